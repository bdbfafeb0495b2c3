#!/usr/bin/perl
# The per-shard AOF (persist/aof.c): restart after SIGTERM, kill -9 of a
# worker and of everything under write load with fsync always (every
# acknowledged write survives), torn tail, corruption in the middle,
# redis-check-aof, BGREWRITEAOF, and a full disk (a real small tmpfs).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use POSIX qw(:sys_wait_h);
use IO::Select;
use Time::HiRes qw(sleep time);
use Test::More;
use Kevy;

my $AOF = "persistence: {aof: {enabled: true, fsync: always}, snapshot: {save: []}}\n";

sub aof_files { my $dir = shift; return sort glob("$dir/data/shard-*.aof") }

# ---- writes, SIGTERM, restart ------------------------------------------------
my $dir = Kevy::tmpdir();
{
    my $k = Kevy->new(dir => $dir, yaml => $AOF);
    ok($k->wait_ready, 'started with the AOF on');
    my $c = $k->connect;
    $c->cmd('SET', "k$_", "v$_") for 1 .. 200;
    is($c->cmd('SET', 'ttl', 'x', 'EX', '1000'), '+OK', 'SET EX');
    is($c->cmd('INCRBYFLOAT', 'fl', '1.25'), '1.25', 'INCRBYFLOAT');
    is($c->cmd('RPUSH', 'list', 'a', 'b', 'c'), ':3', 'RPUSH');
    is($c->cmd('SADD', 'set', 'a', 'b', 'c', 'd'), ':4', 'SADD');
    $c->cmd('SPOP', 'set');
    is($c->cmd('EXPIRE', 'k1', '500'), ':1', 'EXPIRE');
    is($c->cmd('DEL', 'k2'), ':1', 'DEL');
    my $members = join ',', sort @{ $c->cmd('SMEMBERS', 'set') };
    my $info = join '', $k->cli('INFO', 'persistence');
    like($info, qr/aof_enabled:1/, 'INFO aof_enabled:1');
    like($info, qr/aof_last_write_status:ok/, 'INFO aof_last_write_status:ok');
    is($k->stop('TERM'), 0, 'stopped with SIGTERM');
    for my $f (aof_files($dir)) {
        my $out = `redis-check-aof $f 2>&1`;
        like($out, qr/is valid/, "redis-check-aof accepts " . ($f =~ s{.*/}{}r));
    }
    $k = Kevy->new(dir => $dir, yaml => $AOF);
    ok($k->wait_ready, 'restarted');
    $c = $k->connect;
    is($c->cmd('DBSIZE'), ':203', 'every key is back');
    is($c->cmd('GET', 'k200'), 'v200', 'value back');
    is($c->cmd('GET', 'k2'), undef, 'deleted key stays deleted');
    my $ttl = substr($c->cmd('TTL', 'k1'), 1);
    ok($ttl > 490 && $ttl <= 500, "relative expiry replayed as absolute ($ttl)");
    ok(substr($c->cmd('TTL', 'ttl'), 1) > 990, 'SET EX kept its expiry');
    is($c->cmd('GET', 'fl'), '1.25', 'INCRBYFLOAT result');
    is(join(',', sort @{ $c->cmd('SMEMBERS', 'set') }), $members, 'SPOP replayed as the same SREM');

    # BGREWRITEAOF: the file becomes the keyspace; the same data after a restart
    is($c->cmd('BGREWRITEAOF'), '+Background append only file rewriting started', 'BGREWRITEAOF');
    ok(Kevy::wait_until(sub { $k->cli('INFO', 'persistence') =~ /aof_rewrites:[1-9]/ }, 10), 'rewrite done');
    $c->cmd('SET', 'after', 'rewrite');
    is($k->stop('TERM'), 0, 'stopped');
    like(`redis-check-aof $_ 2>&1`, qr/is valid/, 'rewritten file is valid') for aof_files($dir);
    $k = Kevy->new(dir => $dir, yaml => $AOF);
    ok($k->wait_ready, 'restarted after the rewrite');
    is($k->cmd('DBSIZE'), ':204', 'same keys after the rewrite');
    is($k->cmd('GET', 'after'), 'rewrite', 'tail written during/after the rewrite');
    $k->stop('TERM');
}

# ---- kill -9 under write load, fsync always -----------------------------------
# Writers: each connection sends SET w<n>:<i> <i> one at a time and records
# every OK. A reply that is not OK (the connection dropped, -LOADING) ends
# the writer. Every acknowledged write must be there after the respawn.
sub writers {
    my ($k, $n, $out) = @_;
    my @pids;
    for my $w (1 .. $n) {
        my $pid = fork // die;
        if ($pid == 0) {
            my $acked = 0;
            eval {
                my $c = $k->connect;
                for my $i (1 .. 1_000_000) {
                    my $r = $c->cmd('SET', "w$w:$i", $i);
                    last unless defined $r && $r eq '+OK';
                    $acked = $i;
                    open my $f, '>', "$out.$w.tmp" or die;
                    print $f $acked;
                    close $f;
                    rename "$out.$w.tmp", "$out.$w";
                }
            };
            POSIX::_exit(0);
        }
        push @pids, $pid;
    }
    return @pids;
}

# A writer whose requests never met the dead shard would go on: stop them
# all a moment after the kill (each ack is already recorded atomically).
sub stop_writers {
    my @pids = @_;
    sleep 1;
    kill 'TERM', @pids;
    waitpid($_, 0) for @pids;
}

sub acked { my ($out, $w) = @_; open my $f, '<', "$out.$w" or return 0; my $n = <$f>; return $n // 0 }

sub check_acked {
    my ($k, $out, $n, $what) = @_;
    my $c = $k->connect;
    my ($total, $missing) = (0, 0);
    for my $w (1 .. $n) {
        my $a = acked($out, $w);
        $total += $a;
        for (my $i = 1; $i <= $a; $i += 100) {
            my @keys = map { "w$w:$_" } grep { $_ <= $a } $i .. $i + 99;
            my $vals = $c->cmd('MGET', @keys);
            for my $j (0 .. $#keys) {
                my ($want) = $keys[$j] =~ /:(\d+)$/;
                $missing++ unless defined $vals->[$j] && $vals->[$j] eq $want;
            }
        }
    }
    ok($total > 50, "$what: writes were acknowledged ($total)");
    diag("$what: $total acknowledged writes checked");
    is($missing, 0, "$what: every acknowledged write is present");
}

{
    my $dir = Kevy::tmpdir();
    my $k = Kevy->new(dir => $dir, yaml => $AOF, shards => 2);
    ok($k->wait_ready, 'started (kill -9 worker)');
    my $out = "$dir/acked";
    my @pids = writers($k, 6, $out);
    sleep 1.5;
    my $w = $k->workers;
    kill 'KILL', $w->{1};
    stop_writers(@pids);
    ok(Kevy::wait_until(sub { my $n = $k->workers; $n->{1} && $n->{1} != $w->{1} }, 10), 'worker 1 respawned');
    ok($k->wait_ready(10), 'all shards up again');
    my (undef, $m) = $k->http('GET', '/metrics');
    like($m, qr/^kevy_shard_restarts_total\{shard="1"\} 1$/m, 'the restart shows in /metrics');
    check_acked($k, $out, 6, 'kill -9 worker');

    # and the master with everything: a fresh start from the files only
    unlink glob("$out.*");
    @pids = writers($k, 6, $out);
    sleep 1.5;
    $k->kill_all;
    stop_writers(@pids);
    $k = Kevy->new(dir => $dir, yaml => $AOF, shards => 2);
    ok($k->wait_ready, 'restarted after kill -9 of the master');
    check_acked($k, $out, 6, 'kill -9 master');
    $k->stop('TERM');
}

# ---- torn tail and corruption ---------------------------------------------------
{
    my $dir = Kevy::tmpdir();
    my $k = Kevy->new(dir => $dir, yaml => $AOF, shards => 1);
    ok($k->wait_ready, 'started (1 shard)');
    $k->cmd('SET', "t$_", $_) for 1 .. 10;
    $k->stop('TERM');
    my ($f) = aof_files($dir);
    my $good = -s $f;
    open my $fh, '>>', $f or die;
    print $fh "*3\r\n\$3\r\nSET\r\n\$2\r\nzz\r\n\$5\r\n12";
    close $fh;
    $k = Kevy->new(dir => $dir, yaml => $AOF, shards => 1);
    ok($k->wait_ready, 'starts with a torn tail');
    is($k->cmd('DBSIZE'), ':10', 'everything before the tail is there');
    is(-s $f, $good, 'the torn tail was cut off');
    like($k->log_text, qr/shard-0\.aof.*offset $good/, 'the warning names the file and offset');
    $k->stop('TERM');

    # corruption in the middle: the shard refuses to start, naming file and offset
    open $fh, '+<', $f or die;
    seek $fh, 30, 0;
    print $fh "XXXX";
    close $fh;
    $k = Kevy->new(dir => $dir, yaml => $AOF, shards => 1, no_start => 1);
    eval { $k->start };     # it does not become ready
    ok(Kevy::wait_until(sub { $k->log_text =~ /shard 0: .*shard-0\.aof at offset \d+/ }, 10),
       'corruption in the middle: error naming file and offset');
    my ($code) = $k->http('GET', '/healthz');
    is($code, 503, 'the shard is not serving');
    $k->kill_all;
}

# ---- disk full: a real 2 MB tmpfs ---------------------------------------------------
SKIP: {
    skip 'needs root to mount a tmpfs', 10 if $> != 0;
    my $dir = Kevy::tmpdir();
    my $mnt = "$dir/data";
    mkdir $mnt;
    skip 'cannot mount a tmpfs', 10 if system("mount -t tmpfs -o size=2m tmpfs $mnt 2>/dev/null") != 0;
    my $k = Kevy->new(dir => $dir, yaml => $AOF, shards => 1);
    ok($k->wait_ready, 'started on a 2 MB tmpfs');
    my $c = $k->connect;
    $c->cmd('SET', 'keep', 'me');
    my $big = 'x' x 65536;
    my ($n, $held) = (0, 0);
    for my $i (1 .. 100) {
        $c->send_raw(Kevy::Conn::encode('SET', "big$i", $big));
        # the write that hits the full disk is not acknowledged: no reply
        if (!IO::Select->new($c->{s})->can_read(3)) { $held = $i; last }
        my $r = $c->read_reply;
        last unless defined $r && $r eq '+OK';
        $n++;
    }
    ok($held, "the write that found the disk full waits for its reply (after $n)");
    # the write that hit the full disk waits (not acknowledged); the next
    # client's writes get the error
    my $c2 = $k->connect;
    my $r = $c2->cmd('SET', 'other', 'v');
    like($r, qr/^-MISCONF Errors writing to the AOF file: No space left on device/, 'writes get -MISCONF');
    is($c2->cmd('GET', 'keep'), 'me', 'reads keep working');
    like(join('', $k->cli('INFO', 'persistence')), qr/aof_last_write_status:err/, 'INFO aof_last_write_status:err');
    system("mount -o remount,size=20m $mnt");
    ok(Kevy::wait_until(sub { ($c2->cmd('SET', 'other', 'v') // '') eq '+OK' }, 10), 'recovers once there is room');
    is($c->read_reply, '+OK', 'the waiting write is acknowledged once written');
    $n++ if $held;
    $k->stop('TERM');
    like(`redis-check-aof $mnt/shard-0.aof 2>&1`, qr/is valid/, 'no partial command was left in the file');
    $k = Kevy->new(dir => $dir, yaml => $AOF, shards => 1);
    ok($k->wait_ready, 'restarted');
    is($k->cmd('GET', 'keep'), 'me', 'data kept');
    is($k->cmd('EXISTS', map { "big$_" } 1 .. $n), ":$n", "the $n acknowledged big writes are there");
    $k->stop('TERM');
    system("umount $mnt");
}

done_testing();
