#!/usr/bin/perl
# Per-shard RDB snapshots (persist/snapshot.c, persist/rdb_file.c): SAVE and
# restart with the same keys, types, values and TTLs; the shutdown save;
# save points; BGSAVE under writes; redis-check-rdb and redis-server read
# kevy's shard files; a redis-server dump.rdb imported with --import-rdb;
# kill -9 of a worker reloads its snapshot; a corrupt shard file fails
# only that shard, named with the offset in the log and /healthz.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use POSIX qw(:sys_wait_h);
use IO::Select;
use Time::HiRes qw(sleep time);
use Test::More;
use Kevy;

plan skip_all => 'redis-server and redis-check-rdb are needed'
    unless `redis-server --version 2>/dev/null` =~ /v=7\./ && `which redis-check-rdb 2>/dev/null`;

my $NOSAVE = "persistence: {aof: {enabled: false}, snapshot: {save: []}}\n";

sub rdb_files { my $dir = shift; my @f = sort glob("$dir/data/shard-*.rdb"); return @f }

# Every type, small and large encodings, and TTLs.
sub fill {
    my ($c, $p) = @_;
    $p //= '';
    $c->cmd('SET', "${p}s_int", '12345');
    $c->cmd('SET', "${p}s_short", 'hello world');
    $c->cmd('SET', "${p}s_long", 'x' x 5000);
    $c->cmd('SET', "${p}s_bin", join('', map { chr } 0 .. 255));
    $c->cmd('SET', "${p}s_ttl", 'v', 'EX', '5000');
    $c->cmd('RPUSH', "${p}l_small", 'a', 'b', '1', '-7');
    $c->cmd('RPUSH', "${p}l_big", map { "element-$_-" . ('y' x ($_ % 40)) } 1 .. 600);
    $c->cmd('SADD', "${p}set_int", 1, 2, 3, -100, 100000);
    $c->cmd('SADD', "${p}set_str", 'a', 'b', 'c');
    $c->cmd('SADD', "${p}set_big", 1 .. 600);
    $c->cmd('ZADD', "${p}z_small", 1, 'a', 2.5, 'b', -3, 'c');
    $c->cmd('ZADD', "${p}z_big", map { ($_ * 1.5, "member-$_") } 1 .. 200);
    $c->cmd('HSET', "${p}h_small", 'f1', 'v1', 'f2', '2');
    $c->cmd('HSET', "${p}h_big", map { ("field$_", "value$_") } 1 .. 600);
    $c->cmd('HSET', "${p}h_ttl", 'a', 'b');
    $c->cmd('PEXPIRE', "${p}h_ttl", '7000000');
    $c->cmd('PFADD', "${p}hll", 'a', 'b', 'c', 'd');
}
my @KEYS = qw(s_int s_short s_long s_bin s_ttl l_small l_big set_int set_str set_big
              z_small z_big h_small h_big h_ttl hll);

# A key's value in a form that does not depend on hash-table order.
sub value_of {
    my ($c, $k) = @_;
    my $t = $c->cmd('TYPE', $k);
    return "$t:" . ($c->cmd('DUMP', $k) // 'nil') if $t eq '+string' || $t eq '+list';
    return "$t:" . join(',', sort @{ $c->cmd('SMEMBERS', $k) }) if $t eq '+set';
    return "$t:" . join(',', @{ $c->cmd('ZRANGE', $k, 0, -1, 'WITHSCORES') }) if $t eq '+zset';
    if ($t eq '+hash') {
        my %h = @{ $c->cmd('HGETALL', $k) };
        return "$t:" . join(',', map { "$_=$h{$_}" } sort keys %h);
    }
    return $t;
}

sub snapshot_of {
    my ($c, @keys) = @_;
    return { map { ($_ => value_of($c, $_)) } @keys };
}

# A redis-server of our own on a free port; returns (pid, conn).
sub redis_server {
    my ($dir, @args) = @_;
    my $port = Kevy::free_port();
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDOUT, '>>', "$dir/redis.log";
        open STDERR, '>>', "$dir/redis.log";
        exec('redis-server', '--port', $port, '--dir', $dir, '--save', '', '--appendonly', 'no', @args)
            or POSIX::_exit(127);
    }
    my $c;
    Kevy::wait_until(sub { $c = eval { Kevy::connect(undef, $port) }; $c && ($c->cmd('PING') // '') eq '+PONG' }, 10)
        or die "redis-server did not start: " . `cat $dir/redis.log`;
    return ($pid, $c);
}
sub stop_redis { my $pid = shift; kill 'TERM', $pid; waitpid($pid, 0) }

# ---- SAVE, SIGTERM, restart -------------------------------------------------
my $dir = Kevy::tmpdir();
my ($saved, $nkeys);
{
    my $k = Kevy->new(dir => $dir, shards => 3, yaml => $NOSAVE);
    my $c = $k->connect;
    fill($c);
    $c->cmd('SET', "plain$_", "v$_") for 1 .. 300;
    $nkeys = @KEYS + 300;
    is($c->cmd('DBSIZE'), ":$nkeys", 'keys written');
    $saved = snapshot_of($c, @KEYS, map { "plain$_" } 1 .. 300);
    my $info = $k->cli('INFO', 'persistence');
    like($info, qr/rdb_changes_since_last_save:[1-9]/, 'changes counted');
    my $before = substr($c->cmd('LASTSAVE'), 1);
    sleep 1.1;
    is($c->cmd('SAVE'), '+OK', 'SAVE');
    my $after = substr($c->cmd('LASTSAVE'), 1);
    ok($after > $before && abs($after - time) < 5, "LASTSAVE moved once every shard saved ($before -> $after)");
    $info = $k->cli('INFO', 'persistence');
    like($info, qr/rdb_changes_since_last_save:0\r?$/m, 'no changes after SAVE');
    like($info, qr/rdb_saves:3\r?$/m, 'one save per shard');
    like($info, qr/rdb_last_bgsave_status:ok/, 'status ok');
    is(scalar(rdb_files($dir)), 3, 'one snapshot per shard');
    $c->cmd('SET', 'unsaved', '1');
    is($k->stop('TERM'), 0, 'stopped with SIGTERM');

    for my $f (rdb_files($dir)) {
        open my $fh, '<:raw', $f or die;
        read $fh, my $magic, 9;
        is($magic, 'REDIS0010', 'RDB version 10 header');
        like(`redis-check-rdb $f 2>&1`, qr/RDB looks OK/, 'redis-check-rdb accepts ' . ($f =~ s{.*/}{}r));
    }

    $k = Kevy->new(dir => $dir, shards => 3, yaml => $NOSAVE);
    $c = $k->connect;
    is($c->cmd('DBSIZE'), ":$nkeys", 'same number of keys after restart');
    my $now = snapshot_of($c, @KEYS, map { "plain$_" } 1 .. 300);
    is_deeply($now, $saved, 'same keys, types and values (DUMP for strings and lists)');
    is($c->cmd('GET', 'unsaved'), undef, 'a write after SAVE is not in the snapshot (no save points)');
    my $ttl = substr($c->cmd('TTL', 's_ttl'), 1);
    ok($ttl > 4900 && $ttl <= 5000, "TTL kept ($ttl)");
    my $pttl = substr($c->cmd('PTTL', 'h_ttl'), 1);
    ok($pttl > 6_800_000 && $pttl <= 7_000_000, "PTTL of a hash kept ($pttl)");
    is($c->cmd('OBJECT', 'ENCODING', 'h_big'), 'hashtable', 'large hash stays hashtable');
    is($c->cmd('OBJECT', 'ENCODING', 'set_int'), 'intset', 'intset stays intset');
    is($c->cmd('OBJECT', 'ENCODING', 'z_big'), 'skiplist', 'large zset stays skiplist');
    like($k->cli('INFO', 'persistence'), qr/rdb_last_load_keys_loaded:$nkeys\r?$/m, 'INFO: keys loaded');

    # kill -9 of a worker: the respawn reloads its snapshot
    my $w = $k->workers;
    kill 'KILL', $w->{1};
    ok(Kevy::wait_until(sub { my $n = $k->workers->{1}; $n && $n != $w->{1} }, 10), 'worker 1 respawned');
    ok($k->wait_ready(15), 'every shard up again');
    $c = $k->connect;
    is($c->cmd('DBSIZE'), ":$nkeys", 'respawned shard reloaded its snapshot');
    is_deeply(snapshot_of($c, @KEYS), { map { ($_ => $saved->{$_}) } @KEYS }, 'values after the respawn');

    # redis-server serves a kevy shard file
    my $rdir = Kevy::tmpdir();
    for my $f (rdb_files($dir)) {
        my $name = $f =~ s{.*/}{}r;
        system('cp', $f, "$rdir/$name") == 0 or die;
        my ($rpid, $r) = redis_server($rdir, '--dbfilename', $name);
        my @keys = @{ $r->cmd('KEYS', '*') };
        ok(@keys > 0, "redis-server loaded keys from $name");
        my %theirs = %{ snapshot_of($r, @keys) };
        my %ours = map { ($_ => $saved->{$_}) } @keys;
        is_deeply(\%theirs, \%ours, "redis-server serves the same values from $name");
        stop_redis($rpid);
    }
    is($k->stop('TERM'), 0, 'stopped');
}

# ---- save points and the shutdown save ---------------------------------------
{
    my $d = Kevy::tmpdir();
    my $k = Kevy->new(dir => $d, shards => 2, yaml => "persistence: {aof: {enabled: false}, snapshot: {save: [\"1 1\"]}}\n");
    my $c = $k->connect;
    $c->cmd('SET', 'a', '1');
    ok(Kevy::wait_until(sub { $k->cli('INFO', 'persistence') =~ /rdb_saves:[1-9]/ }, 10), 'a save point fired');
    ok(Kevy::wait_until(sub { $k->cli('INFO', 'persistence') =~ /rdb_changes_since_last_save:0\r?$/m }, 10),
       'changes reset');
    $c->cmd('SET', 'b', '2');
    $c->cmd('SET', 'c', '3');
    is($k->stop('TERM'), 0, 'stopped');
    $k = Kevy->new(dir => $d, shards => 2, yaml => "persistence: {aof: {enabled: false}, snapshot: {save: [\"3600 1\"]}}\n");
    $c = $k->connect;
    is($c->cmd('MGET', 'a', 'b', 'c')->[2], '3', 'the shutdown save kept the last writes');
    like($k->log_text, qr/Saving the final RDB snapshot before exiting/, 'logged the final save');
    $k->stop('TERM');
}

# ---- SHUTDOWN NOSAVE and SHUTDOWN SAVE reach every worker ------------------------
{
    my $d = Kevy::tmpdir();
    my $every = "persistence: {aof: {enabled: false}, snapshot: {save: [\"3600 1\"]}}\n";
    my $shutdown = sub {
        my ($k, @how) = @_;
        my $c = $k->connect;
        $c->send_raw(Kevy::Conn::encode('SHUTDOWN', @how));
        is($c->read_reply, 'EOF', "SHUTDOWN @how closes the connection");
        ok(Kevy::wait_until(sub { waitpid($k->{master}, POSIX::WNOHANG()) == $k->{master} }, 10), '... and kevy exits');
        delete $k->{master};
    };
    my $k = Kevy->new(dir => $d, shards => 3, yaml => $every);
    my $c = $k->connect;
    $c->cmd('SET', "kept$_", $_) for 1 .. 30;
    is($c->cmd('SAVE'), '+OK', 'SAVE');
    $c->cmd('SET', "lost$_", $_) for 1 .. 30;       # on every shard, after the save
    $shutdown->($k, 'NOSAVE');
    $k = Kevy->new(dir => $d, shards => 3, yaml => $every);
    $c = $k->connect;
    is($c->cmd('DBSIZE'), ':30', 'SHUTDOWN NOSAVE: no shard saved the later writes');
    unlike($k->log_text, qr/Saving the final RDB snapshot/, '... nor logged a final save');

    # No save points: only SHUTDOWN SAVE saves.
    $k->stop('TERM');
    $k = Kevy->new(dir => $d, shards => 3, yaml => $NOSAVE);
    $c = $k->connect;
    $c->cmd('SET', "more$_", $_) for 1 .. 30;
    $shutdown->($k, 'SAVE', 'NOW');
    $k = Kevy->new(dir => $d, shards => 3, yaml => $NOSAVE);
    $c = $k->connect;
    is($c->cmd('DBSIZE'), ':60', 'SHUTDOWN SAVE without save points: every shard saved');
    $k->stop('TERM');
}

# ---- BGSAVE while writing ------------------------------------------------------
{
    my $d = Kevy::tmpdir();
    my $k = Kevy->new(dir => $d, shards => 2, yaml => $NOSAVE);
    my $c = $k->connect;
    my $w = $k->connect;
    $c->cmd('SET', "pre$_", 'x' x 100) for 1 .. 2000;
    is($c->cmd('BGSAVE'), '+Background saving started', 'BGSAVE');
    # Writes go on while the children save.
    my $during = 0;
    for my $i (1 .. 500) { $during++ if ($w->cmd('SET', "during$i", 'y') // '') eq '+OK' }
    is($during, 500, 'writes served during BGSAVE');
    my $again = $c->cmd('BGSAVE');
    ok($again eq '+Background saving started' || $again =~ /^-ERR Background save already in progress/,
       "second BGSAVE: $again");
    ok(Kevy::wait_until(sub { $k->cli('INFO', 'persistence') =~ /rdb_bgsave_in_progress:0/ }, 20), 'BGSAVE done');
    like($k->cli('INFO', 'persistence'), qr/rdb_last_bgsave_status:ok/, 'BGSAVE ok');
    is($c->cmd('BGSAVE', 'nonsense'), '-ERR syntax error', 'BGSAVE with a bad argument');
    like(`redis-check-rdb $_ 2>&1`, qr/RDB looks OK/, 'BGSAVE file accepted by redis-check-rdb') for rdb_files($d);
    $k->kill_all;       # no shutdown save: the restart shows the BGSAVE files
    $k = Kevy->new(dir => $d, shards => 2, yaml => $NOSAVE);
    $c = $k->connect;
    my $n = substr($c->cmd('DBSIZE'), 1);
    ok($n >= 2000 && $n <= 2500, "restart after kill -9: every key before BGSAVE is there ($n)");
    is(scalar(grep { defined } @{ $c->cmd('MGET', map { "pre$_" } 1 .. 2000) }), 2000, 'pre-BGSAVE values');
    $k->stop('TERM');
}

# ---- kevy --import-rdb of a redis-server dump.rdb ----------------------------------
{
    my $rdir = Kevy::tmpdir();
    my ($rpid, $r) = redis_server($rdir);
    fill($r);
    $r->cmd('SET', "plain$_", "v$_") for 1 .. 1000;
    $r->cmd('SET', 'gone', 'x', 'PX', '1');
    sleep 0.05;
    my @keys = (@KEYS, map { "plain$_" } 1 .. 1000);
    my $theirs = snapshot_of($r, @keys);
    my %dump = map { ($_ => $r->cmd('DUMP', $_)) } @KEYS;
    is($r->cmd('SAVE'), '+OK', 'redis-server SAVE');
    stop_redis($rpid);

    my $d = Kevy::tmpdir();
    my $k = Kevy->new(dir => $d, shards => 3, yaml => $NOSAVE, no_start => 1);
    my $out = `$Kevy::BIN --import-rdb $rdir/dump.rdb -c $k->{conf} 2>&1`;
    is($?, 0, 'import exit status 0') or diag $out;
    like($out, qr/imported \d+ keys/, "import summary: $out");
    is(scalar(rdb_files($d)), 3, 'three shard files written');
    my $meta = do { local $/; open my $mf, '<', "$d/data/shards.meta" or die "no shards.meta"; <$mf> };
    like($meta, qr/shards 3\nrouting hash/, 'the import records its layout in shards.meta');
    $out = `$Kevy::BIN --import-rdb $rdir/dump.rdb -c $k->{conf} 2>&1`;
    isnt($?, 0, 'a second import without --force is refused');
    like($out, qr/already exists: use --force/, "refusal: $out");
    $out = `$Kevy::BIN --import-rdb $rdir/dump.rdb --force -c $k->{conf} 2>&1`;
    is($?, 0, '--force replaces the files') or diag $out;
    like(`redis-check-rdb $_ 2>&1`, qr/RDB looks OK/, 'imported shard file valid') for rdb_files($d);

    $k->start;
    my $c = $k->connect;
    is($c->cmd('DBSIZE'), ':' . scalar(@keys), 'every key imported (the expired one dropped)');
    is_deeply(snapshot_of($c, @keys), $theirs, 'same values as in redis-server');
    for my $key (qw(s_int s_short s_long l_small l_big set_int z_small h_small hll)) {
        is($c->cmd('DUMP', $key), $dump{$key}, "DUMP of $key identical to redis-server's");
    }
    ok(substr($c->cmd('TTL', 's_ttl'), 1) > 4900, 'TTL imported');
    $k->stop('TERM');
}

# ---- a corrupt shard file ---------------------------------------------------------
{
    my $d = Kevy::tmpdir();
    my $k = Kevy->new(dir => $d, shards => 3, yaml => $NOSAVE);
    my $c = $k->connect;
    $c->cmd('SET', "key$_", "value$_") for 1 .. 300;
    is($c->cmd('SAVE'), '+OK', 'SAVE');
    is($k->stop('TERM'), 0, 'stopped');
    my $f = "$d/data/shard-1.rdb";
    my $size = -s $f;
    open my $fh, '+<:raw', $f or die;
    seek $fh, int($size / 2), 0;
    print $fh "\xff\xfe\xfd";
    close $fh;

    # Started by hand: Kevy->start waits for every shard to be up.
    $k->{master} = do {
        my $pid = fork // die;
        if ($pid == 0) {
            open STDOUT, '>>', "$d/stdout";
            open STDERR, '>>', "$d/stderr";
            exec($Kevy::BIN, '-c', $k->{conf}) or POSIX::_exit(127);
        }
        $pid;
    };
    my ($code, $body);
    ok(Kevy::wait_until(sub { ($code, $body) = $k->http('GET', '/healthz'); ($body // '') =~ /"failed"/ }, 10),
       '/healthz reports the shard as failed');
    is($code, 503, '/healthz 503');
    like($body, qr/"shard":1,"state":"failed".*"reason":"shard-1\.rdb: corrupt at offset \d+/, "names the file and offset: $body");
    like($k->log_text, qr{shard 1: \S*/shard-1\.rdb: corrupt at offset \d+: }, 'the log names file and offset');
    # The failed worker's listening socket is closed while it is down, so
    # every new connection reaches a live worker.
    my ($live, $answered) = (undef, 0);
    for (1 .. 30) {
        my $try = $k->connect;
        $try->send_raw(Kevy::Conn::encode('PING'));
        if (IO::Select->new($try->{s})->can_read(2)) { $try->read_reply; $answered++; $live //= $try; next }
        $try->close;
    }
    is($answered, 30, 'every new connection is answered while a shard is failed');
    $live or BAIL_OUT('no live worker');
    my ($ok, $loading) = (0, 0);
    for my $i (1 .. 300) {
        my $v = $live->cmd('GET', "key$i") // '';
        $ok++ if $v eq "value$i";
        $loading++ if $v =~ /^-LOADING/;
    }
    ok($ok > 100, "the other shards serve ($ok keys)");
    ok($loading > 0, "the failed shard's keys answer -LOADING ($loading)");
    sleep 1;
    my $restarts = () = $k->log_text =~ /shard 1: .*corrupt at offset/g;
    ok($restarts < 10, "not respawned in a tight loop ($restarts attempts)");
    is($k->stop('TERM'), 0, 'stops cleanly with a failed shard');
}

done_testing();
