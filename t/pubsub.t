# Pub/Sub across workers: exact receiver counts, per-publisher ordering,
# patterns, shard channels, subscribed-mode rules (compared with
# redis-server when installed), PUBSUB introspection, the pubsub output
# buffer limit, keyspace notifications, a worker dying mid-PUBLISH.
use strict;
use warnings;
use Test::More;
use IO::Select;
use Time::HiRes qw(sleep time);
use lib 't/lib';
use Kevy;

my $SHARDS = 3;
my $k = Kevy->new(shards => $SHARDS);

sub worker_of { my $c = shift; my $id = $c->cmd('CLIENT', 'ID'); $id =~ s/^://; return $id % $SHARDS }

# Connections until every worker holds at least $per of them.
sub spread {
    my ($per) = @_;
    my (%by, @all);
    for (1 .. 200) {
        my $c = $k->connect;
        my $w = worker_of($c);
        if (@{ $by{$w} ||= [] } < $per) { push @{ $by{$w} }, $c; push @all, $c }
        else { $c->close }
        last if keys(%by) == $SHARDS && !grep { @{ $by{$_} } < $per } keys %by;
    }
    return (\%by, \@all);
}

# Nothing more arrives on $c within $t seconds.
sub quiet {
    my ($c, $t) = @_;
    return 0 if length $c->{buf};
    my $sel = IO::Select->new($c->{s});
    return !$sel->can_read($t // 0.3);
}

sub flat { my $r = shift; ref $r ? join(' ', map { defined $_ ? (ref $_ ? '[' . flat($_) . ']' : $_) : '(nil)' } @$r) : (defined $r ? $r : '(nil)') }

my ($by, $subs) = spread(2);
is(scalar(keys %$by), $SHARDS, "subscribers on every worker ($SHARDS)");
my $pub = $k->connect;
my $pubw = worker_of($pub);

# ---- SUBSCRIBE / PUBLISH counts ----------------------------------------------------
for my $s (@$subs) {
    is_deeply($s->cmd('SUBSCRIBE', 'news', 'sport'), [ 'subscribe', 'news', ':1' ], 'subscribe news');
    is_deeply($s->read_reply, [ 'subscribe', 'sport', ':2' ], 'subscribe sport');
}
my $n = scalar @$subs;
is($pub->cmd('PUBLISH', 'news', 'hello'), ":$n", "PUBLISH counts every worker's subscribers ($n)");
is_deeply($_->read_reply, [ 'message', 'news', 'hello' ], 'message pushed') for @$subs;
is($pub->cmd('PUBLISH', 'nobody', 'x'), ':0', 'PUBLISH to no subscriber');
is_deeply($pub->cmd('PUBSUB', 'NUMSUB', 'news', 'sport', 'none'), [ 'news', ":$n", 'sport', ":$n", 'none', ':0' ],
          'PUBSUB NUMSUB sums the workers');
is_deeply([ sort @{ $pub->cmd('PUBSUB', 'CHANNELS') } ], [ 'news', 'sport' ], 'PUBSUB CHANNELS: union');
is_deeply($pub->cmd('PUBSUB', 'CHANNELS', 'n*'), ['news'], 'PUBSUB CHANNELS pattern');

# Replies in order around a PUBLISH (it waits for the other workers).
$pub->send_raw(join '', map { Kevy::Conn::encode(@$_) } [ 'SET', 'k1', 'v' ], [ 'PUBLISH', 'news', 'm' ],
               [ 'GET', 'k1' ], [ 'PUBLISH', 'nobody', 'x' ], [ 'PING' ]);
is_deeply([ map { $pub->read_reply } 1 .. 5 ], [ '+OK', ":$n", 'v', ':0', '+PONG' ], 'PUBLISH keeps its reply order');
$_->read_reply for @$subs;

# ---- ordering: 1000 messages from each of two publishers ----------------------------
my $pub2;
for (1 .. 50) { my $c = $k->connect; if (worker_of($c) != $pubw) { $pub2 = $c; last } $c->close }
my $N = 1000;
$pub->send_raw(join '', map { Kevy::Conn::encode('PUBLISH', 'news', "a$_") } 1 .. $N);
$pub2->send_raw(join '', map { Kevy::Conn::encode('PUBLISH', 'news', "b$_") } 1 .. $N);
my @counts = ((map { $pub->read_reply } 1 .. $N), (map { $pub2->read_reply } 1 .. $N));
is(scalar(grep { $_ eq ":$n" } @counts), 2 * $N, 'every pipelined PUBLISH counts every subscriber');
my $ordered = 0;
for my $s (@$subs) {
    my (@a, @b);
    for (1 .. 2 * $N) {
        my $m = $s->read_reply;
        if ($m->[2] =~ /^a(\d+)$/) { push @a, $1 } else { $m->[2] =~ /^b(\d+)$/; push @b, $1 }
    }
    $ordered++ if "@a" eq join(' ', 1 .. $N) && "@b" eq join(' ', 1 .. $N);
}
is($ordered, $n, "each subscriber got both publishers' $N messages in order");

# ---- patterns ----------------------------------------------------------------------------
my @w = sort keys %$by;
my ($p0, $p1) = ($by->{ $w[0] }[0], $by->{ $w[1] }[0]);
is_deeply($p0->cmd('PSUBSCRIBE', 'n*'), [ 'psubscribe', 'n*', ':3' ], 'PSUBSCRIBE counts channels + patterns');
is_deeply($p1->cmd('PSUBSCRIBE', 'n*', 'x?'), [ 'psubscribe', 'n*', ':3' ], 'PSUBSCRIBE on another worker');
$p1->read_reply;
is($pub->cmd('PUBSUB', 'NUMPAT'), ':2', 'PUBSUB NUMPAT: distinct patterns over the workers');
is($pub->cmd('PUBLISH', 'news', 'p'), ':' . ($n + 2), 'channel and pattern deliveries both count');
for my $s (@$subs) {
    my @got = ($s->read_reply);
    push @got, $s->read_reply if $s == $p0 || $s == $p1;
    my $txt = join ' | ', map { flat($_) } @got;
    my $want = 'message news p' . (($s == $p0 || $s == $p1) ? ' | pmessage n* news p' : '');
    is($txt, $want, 'message then pmessage') if $s == $p0 || $s == $p1 || $s == $subs->[-1];
}
is($pub->cmd('PUBLISH', 'xy', 'q'), ':1', 'pattern only');
is_deeply($p1->read_reply, [ 'pmessage', 'x?', 'xy', 'q' ], 'pmessage');

# ---- subscribed mode ----------------------------------------------------------------------
my $s0 = $by->{ $w[0] }[1];
like($s0->cmd('GET', 'k1'), qr/^-ERR Can't execute 'get': only \(P\|S\)SUBSCRIBE/, 'GET refused in subscribed mode');
is_deeply($s0->cmd('PING'), [ 'pong', '' ], 'PING in subscribed mode');
is_deeply($s0->cmd('PING', 'hi'), [ 'pong', 'hi' ], 'PING arg in subscribed mode');
my $cl = $pub->cmd('CLIENT', 'LIST');
my ($line) = grep { /cmd=psubscribe/ && /psub=2/ } split /\n/, $cl;
like($line // '', qr/flags=P .*sub=2 psub=2 ssub=0/, 'CLIENT LIST: flags=P sub= psub= ssub=');
like($pub->cmd('CLIENT', 'LIST', 'TYPE', 'pubsub'), qr/sub=2/, 'CLIENT LIST TYPE pubsub');
is_deeply($s0->cmd('UNSUBSCRIBE', 'news'), [ 'unsubscribe', 'news', ':1' ], 'UNSUBSCRIBE one');
is($pub->cmd('PUBLISH', 'news', 'z'), ':' . ($n + 1), 'one subscriber fewer');
$_->read_reply for grep { $_ != $s0 } @$subs;
$_->read_reply for ($p0, $p1);
is_deeply($s0->cmd('UNSUBSCRIBE'), [ 'unsubscribe', 'sport', ':0' ], 'UNSUBSCRIBE all');
is_deeply($s0->cmd('UNSUBSCRIBE'), [ 'unsubscribe', undef, ':0' ], 'UNSUBSCRIBE with none: nil');
is($s0->cmd('PING'), '+PONG', 'out of subscribed mode');
is($p0->cmd('PUNSUBSCRIBE', 'n*')->[2], ':2', 'PUNSUBSCRIBE counts');
is($p0->cmd('RESET'), '+RESET', 'RESET');
is($p0->cmd('GET', 'k1'), 'v', 'RESET left subscribed mode');
is($pub->cmd('PUBLISH', 'sport', 'after'), ':' . ($n - 2), 'RESET unsubscribed everything');
$_->read_reply for grep { $_ != $s0 && $_ != $p0 } @$subs;

# ---- shard channels ------------------------------------------------------------------------
my $ss = $by->{ $w[2] }[1];
is_deeply($ss->cmd('SSUBSCRIBE', 'orders'), [ 'ssubscribe', 'orders', ':1' ], 'SSUBSCRIBE counts separately');
is($pub->cmd('SPUBLISH', 'orders', 'o1'), ':1', 'SPUBLISH reaches a shard subscriber on another worker');
is_deeply($ss->read_reply, [ 'smessage', 'orders', 'o1' ], 'smessage');
is($pub->cmd('PUBLISH', 'orders', 'o2'), ':0', 'PUBLISH does not reach shard subscribers');
is_deeply($pub->cmd('PUBSUB', 'SHARDNUMSUB', 'orders'), [ 'orders', ':1' ], 'PUBSUB SHARDNUMSUB');
is_deeply($pub->cmd('PUBSUB', 'SHARDCHANNELS'), ['orders'], 'PUBSUB SHARDCHANNELS');
is_deeply($ss->cmd('SUNSUBSCRIBE'), [ 'sunsubscribe', 'orders', ':0' ], 'SUNSUBSCRIBE all');
is_deeply($ss->cmd('PUNSUBSCRIBE'), [ 'punsubscribe', undef, ':2' ], 'PUNSUBSCRIBE with none: nil, channel count');

# ---- error texts as redis-server's ------------------------------------------------------
SKIP: {
    my $rs = `sh -c 'command -v redis-server'`;
    chomp $rs;
    skip 'redis-server not installed', 1 unless $rs;
    my $rport = Kevy::free_port();
    my $rdir = Kevy::tmpdir();
    system($rs, '--port', $rport, '--save', '', '--appendonly', 'no', '--daemonize', 'yes',
           '--pidfile', "$rdir/r.pid", '--dir', $rdir, '--logfile', "$rdir/r.log");
    my $r;
    for (1 .. 50) {
        $r = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $rport) and last;
        sleep 0.1;
    }
    skip 'redis-server did not start', 1 unless $r;
    my $rc = bless { s => $r, buf => '' }, 'Kevy::Conn';
    my $kc = $k->connect;
    my @script = ([ 'PSUBSCRIBE', 'a*' ], ['UNSUBSCRIBE'], [ 'SSUBSCRIBE', 'x' ], [ 'GET', 'x' ], [ 'CLIENT', 'LIST' ],
                  [ 'CLIENT', 'FOO' ], [ 'CONFIG', 'GET', 'x' ], [ 'PING', 'x' ], [ 'PING', 'x', 'y' ], ['FOO'],
                  [ 'PUBLISH', 'a', 'b' ], ['SUNSUBSCRIBE'], [ 'PUNSUBSCRIBE', 'a*' ], ['PUNSUBSCRIBE'],
                  [ 'SUBSCRIBE', 'c', 'd', 'c' ], [ 'UNSUBSCRIBE', 'd', 'e' ], ['RESET'], ['PING'],
                  [ 'PUBSUB', 'CHANNELS', 'a', 'b' ], [ 'PUBSUB', 'NUMPAT', 'x' ], [ 'PUBSUB', 'FOO' ], ['PUBSUB', 'HELP'],
                  [ 'PUBSUB', 'NUMSUB' ], [ 'CONFIG', 'SET', 'notify-keyspace-events', 'Kq' ],
                  [ 'CONFIG', 'SET', 'notify-keyspace-events', 'KEA' ], [ 'CONFIG', 'GET', 'notify-keyspace-events' ],
                  [ 'CONFIG', 'SET', 'notify-keyspace-events', 'Eg$lshzxetdmn' ],
                  [ 'CONFIG', 'GET', 'notify-keyspace-events' ],
                  [ 'CONFIG', 'SET', 'notify-keyspace-events', '' ], [ 'CONFIG', 'GET', 'client-output-buffer-limit' ]);
    my ($same, @diff) = (0);
    for my $cmd (@script) {
        my @want = ($rc->cmd(@$cmd));
        my @got = ($kc->cmd(@$cmd));
        # multi-channel commands answer one array per channel
        if ($cmd->[0] =~ /SUBSCRIBE$/i && @$cmd > 2) {
            for (1 .. @$cmd - 2) { push @want, $rc->read_reply; push @got, $kc->read_reply }
        }
        my ($w, $g) = (join(' | ', map { flat($_) } @want), join(' | ', map { flat($_) } @got));
        if ($w eq $g) { $same++ } else { push @diff, "@$cmd: redis <$w> kevy <$g>" }
    }
    is($same, scalar @script, 'subscribed-mode replies and errors as redis-server') or diag join "\n", @diff;
    $rc->cmd('SHUTDOWN', 'NOSAVE');
}

# ---- keyspace notifications ---------------------------------------------------------------
is($pub->cmd('CONFIG', 'SET', 'notify-keyspace-events', 'KEA'), '+OK', 'CONFIG SET notify-keyspace-events');
is_deeply($pub->cmd('CONFIG', 'GET', 'notify-keyspace-events'), [ 'notify-keyspace-events', 'AKE' ], 'CONFIG GET');
my $ks;
for (1 .. 50) { my $c = $k->connect; if (worker_of($c) != $pubw) { $ks = $c; last } $c->close }
$ks->cmd('PSUBSCRIBE', '__key*@0__:*');
my $writer = $pub;
# Each step: the command, then the events expected (keyspace + keyevent
# pairs), read before the next step (events of different shards may
# interleave otherwise).
sub events {
    my ($want) = @_;
    my @got;
    push @got, flat($ks->read_reply) for 1 .. scalar @$want;
    return [ map { s/^pmessage __key\*\@0__:\* //r } @got ];
}
sub both { my ($ev, $key) = @_; ("__keyspace\@0__:$key $ev", "__keyevent\@0__:$ev $key") }
my @steps = (
    [ [ 'SET', 'ks1', 'v' ], [ both('set', 'ks1') ] ],
    [ [ 'SET', 'ks2', 'v', 'EX', '100' ], [ both('set', 'ks2'), both('expire', 'ks2') ] ],
    [ [ 'INCRBY', 'ks3', '5' ], [ both('incrby', 'ks3') ] ],
    [ [ 'APPEND', 'ks1', 'x' ], [ both('append', 'ks1') ] ],
    [ [ 'EXPIRE', 'ks1', '100' ], [ both('expire', 'ks1') ] ],
    [ [ 'PERSIST', 'ks1' ], [ both('persist', 'ks1') ] ],
    [ [ 'DEL', 'ks1' ], [ both('del', 'ks1') ] ],
    [ [ 'LPUSH', 'kl', 'a', 'b' ], [ both('lpush', 'kl') ] ],
    [ [ 'RPOP', 'kl' ], [ both('rpop', 'kl') ] ],
    [ [ 'LPOP', 'kl' ], [ both('lpop', 'kl'), both('del', 'kl') ] ],
    [ [ 'HSET', 'kh', 'f', '1' ], [ both('hset', 'kh') ] ],
    [ [ 'HINCRBY', 'kh', 'f', '1' ], [ both('hincrby', 'kh') ] ],
    [ [ 'HDEL', 'kh', 'f' ], [ both('hdel', 'kh'), both('del', 'kh') ] ],
    [ [ 'SADD', 'kset', 'm' ], [ both('sadd', 'kset') ] ],
    [ [ 'SREM', 'kset', 'm' ], [ both('srem', 'kset'), both('del', 'kset') ] ],
    [ [ 'ZADD', 'kz', '1', 'm' ], [ both('zadd', 'kz') ] ],
    [ [ 'ZINCRBY', 'kz', '1', 'm' ], [ both('zincr', 'kz') ] ],
    [ [ 'ZREM', 'kz', 'm' ], [ both('zrem', 'kz'), both('del', 'kz') ] ],
    [ [ 'SET', '{t}a', '1' ], [ both('set', '{t}a') ] ],
    [ [ 'RENAME', '{t}a', '{t}b' ], [ both('rename_from', '{t}a'), both('rename_to', '{t}b') ] ],
    [ [ 'SET', 'kx', '1', 'PX', '50' ], [ both('set', 'kx'), both('expire', 'kx') ] ],
    [ undef, [ both('expired', 'kx') ] ],      # active expiry, or the GET below
);
for my $st (@steps) {
    my ($cmd, $want) = @$st;
    if ($cmd) { $writer->cmd(@$cmd) } else { sleep 0.2; $writer->cmd('GET', 'kx') }
    is_deeply(events($want), $want, $cmd ? "events of @$cmd" : 'expired event');
}
is($pub->cmd('CONFIG', 'SET', 'notify-keyspace-events', ''), '+OK', 'notifications off');
$writer->cmd('SET', 'ks1', 'again');
ok(quiet($ks, 0.3), 'no events once disabled');
is($pub->cmd('CONFIG', 'SET', 'notify-keyspace-events', 'Kq')=~ /Invalid event class character/ ? 1 : 0, 1,
   'bad class character refused');
$ks->cmd('RESET');

# ---- a subscriber that does not read is cut at the pubsub limit ------------------------------
is($pub->cmd('CONFIG', 'SET', 'client-output-buffer-limit', 'pubsub 1mb 0 0'), '+OK', 'pubsub limit 1mb');
my ($slow, $fast);
for (1 .. 50) { my $c = $k->connect; if (worker_of($c) != $pubw) { $slow //= $c; last if $fast } else { $fast //= $c } }
$fast //= $k->connect;
$slow->cmd('SUBSCRIBE', 'flood');
$fast->cmd('SUBSCRIBE', 'flood');
my $payload = 'x' x 10000;
my $M = 2000;                   # 20 MB: more than socket buffers and the limit
my ($replies, $got, $t0) = (0, 0, time);
my $batch = 20;
for (my $i = 0; $i < $M; $i += $batch) {
    $pub->send_raw(join '', map { Kevy::Conn::encode('PUBLISH', 'flood', $payload) } 1 .. $batch);
    for (1 .. $batch) { my $r = $pub->read_reply; $replies++ if $r =~ /^:\d+$/ }
    while ($got < $i + $batch) { my $m = $fast->read_reply; last unless ref $m; $got++ if $m->[2] eq $payload }
}
is($replies, $M, 'the publisher is never blocked by the slow subscriber');
is($got, $M, 'the fast subscriber got every message');
ok(Kevy::wait_until(sub { $k->log_text =~ /closed for overcoming of output buffer limits \(pubsub/ }, 5),
   'slow subscriber closed and logged');
is($pub->cmd('PUBLISH', 'flood', 'x'), ':1', 'only the fast subscriber remains');
my $eof = eval { $slow->read_all };
ok(defined $eof && length($eof) < 20_000_000, 'slow subscriber: connection closed, not all delivered');
$pub->cmd('CONFIG', 'SET', 'client-output-buffer-limit', 'pubsub 32mb 8mb 60');

# ---- a worker dying mid-PUBLISH counts 0, does not fail ---------------------------------------
{
    my $fresh = $k->connect;
    my $fw = worker_of($fresh);
    my $victim = (grep { $_ != $fw } 0 .. $SHARDS - 1)[0];
    my $live = 0;
    for my $w (sort keys %$by) {
        for my $c (@{ $by->{$w} }) {
            next unless $c->cmd('SUBSCRIBE', 'last')->[2] =~ /^:\d+$/;
            $live++ unless $w == $victim;
        }
    }
    my $pids = $k->workers;
    kill 'KILL', $pids->{$victim};
    my @r;
    $fresh->send_raw(join '', map { Kevy::Conn::encode('PUBLISH', 'last', 'x') } 1 .. 200);
    push @r, $fresh->read_reply for 1 .. 200;
    is(scalar(grep { /^:\d+$/ } @r), 200, 'PUBLISH while a worker restarts: integer replies');
    ok(!grep({ /^:(\d+)$/ && $1 < $live } @r), "live workers' subscribers always counted ($live)");
}

done_testing;
