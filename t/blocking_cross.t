# Blocking commands whose keys live on several shards (block_multi.c,
# docs/blocking.md): woken by writes on any of the shards, timeouts,
# exactly-once delivery among many waiters, disconnects, CLIENT UNBLOCK.
use strict;
use warnings;
use Test::More;
use Time::HiRes qw(sleep time);
use POSIX qw(:sys_wait_h);
use lib 't/lib';
use Kevy;

my $SHARDS = 3;
my $k = Kevy->new(shards => $SHARDS);

# Two keys on two different shards, named after $base.
sub two_keys {
    my ($base) = @_;
    my $a = "${base}a";
    for my $i (1 .. 100) {
        my $b = "${base}b$i";
        return ($a, $b) if $k->owner_of($b) != $k->owner_of($a);
    }
    die "no second shard";
}
sub worker_of { my $c = shift; my $id = $c->cmd('CLIENT', 'ID'); $id =~ s/^://; return $id % $SHARDS }
sub flat { my $r = shift; ref $r ? join(' ', map { defined $_ ? (ref $_ ? '[' . flat($_) . ']' : $_) : '(nil)' } @$r) : (defined $r ? $r : '(nil)') }
sub have { my $r = $k->connect->cmd('COMMAND', 'INFO', shift); return ref $r && defined $r->[0] }

my $c = $k->connect;
my $p = $k->connect;
$p = $k->connect while worker_of($p) == worker_of($c);      # the writer on another worker

# ---- XREAD / XREADGROUP ---------------------------------------------------------
my ($sa, $sb) = two_keys('st');
$c->cmd('XADD', $sa, '1-1', 'f', 'a1');
is(flat($c->cmd('XREAD', 'BLOCK', 0, 'STREAMS', $sa, $sb, 0, 0)), "[$sa [[1-1 [f a1]]]]", 'XREAD BLOCK over two shards: data at once');
my $t = time;
is($c->cmd('XREAD', 'BLOCK', 200, 'STREAMS', $sa, $sb, '$', '$'), undef, 'XREAD BLOCK 200 over two shards: nil ...');
my $el = time - $t;
ok($el >= 0.18 && $el < 2, sprintf('... after %.2fs', $el));
$c->send_raw(Kevy::Conn::encode('XREAD', 'BLOCK', 0, 'STREAMS', $sa, $sb, '$', '$'));
sleep 0.2;
$p->cmd('XADD', $sb, '7-1', 'g', 'b7');
is(flat($c->read_reply), "[$sb [[7-1 [g b7]]]]", 'woken by XADD on the second shard: only what came after $');
is($c->cmd('PING'), '+PONG', 'the connection goes on');

# XREADGROUP: each entry to exactly one consumer.
$c->cmd('XGROUP', 'CREATE', $_, 'g', '$', 'MKSTREAM') for $sa, $sb;
my @cons = map { my $x = $k->connect; $x } 1 .. 6;
for my $i (0 .. $#cons) {
    $cons[$i]->send_raw(Kevy::Conn::encode('XREADGROUP', 'GROUP', 'g', "c$i", 'COUNT', 1, 'BLOCK', 3000, 'STREAMS', $sa, $sb, '>', '>'));
}
sleep 0.3;
$p->cmd('XADD', $_ % 2 ? $sa : $sb, '*', 'n', $_) for 1 .. 6;
my %got;
for my $x (@cons) {
    my $r = $x->read_reply;
    next unless ref $r;
    $got{ $_->[1][0][1][1] }++ for @$r;
}
is(join(',', sort { $a <=> $b } keys %got), '1,2,3,4,5,6', 'XREADGROUP BLOCK over two shards: 6 entries to 6 waiting consumers');
ok(!grep({ $_ != 1 } values %got), 'each entry once');

# A woken XREADGROUP whose stream or group went answers as Redis 7.0 does.
for my $case (['DEL', $sb], ['SET', $sb, 'x'], ['FLUSHALL'], ['XGROUP', 'DESTROY', $sb, 'g']) {
    $p->cmd('DEL', $sa, $sb);
    $p->cmd('XGROUP', 'CREATE', $_, 'g', '$', 'MKSTREAM') for $sa, $sb;
    $c->send_raw(Kevy::Conn::encode('XREADGROUP', 'GROUP', 'g', 'c', 'BLOCK', 0, 'STREAMS', $sa, $sb, '>', '>'));
    sleep 0.2;
    $p->cmd(@$case);
    my $want = $case->[0] eq 'XGROUP' ? '-NOGROUP the consumer group this client was blocked on no longer exists'
                                      : '-UNBLOCKED the stream key no longer exists';
    is($c->read_reply, $want, "XREADGROUP BLOCK over two shards, then $case->[0]: $want");
}

# ---- lists and sorted sets (when the server has them) ------------------------------
SKIP: {
    skip 'no BLPOP', 11 unless have('blpop');
    my ($la, $lb) = two_keys('li');
    $c->cmd('RPUSH', $lb, 'x');
    is(flat($c->cmd('BLPOP', $la, $lb, 0)), "$lb x", 'BLPOP over two shards: the first non-empty key');
    $c->cmd('RPUSH', $la, 'y');
    $c->cmd('RPUSH', $lb, 'z');
    is(flat($c->cmd('BLPOP', $la, $lb, 0)), "$la y", '... in argument order');
    $c->cmd('DEL', $lb);
    $t = time;
    is($c->cmd('BLPOP', $la, $lb, 0.2), undef, 'BLPOP 0.2 over two shards: nil');
    $c->send_raw(Kevy::Conn::encode('BRPOP', $la, $lb, 0));
    sleep 0.2;
    $p->cmd('LPUSH', $lb, 'w');
    is(flat($c->read_reply), "$lb w", 'BRPOP woken by a push on the second shard');
    $c->send_raw(Kevy::Conn::encode('BLMOVE', $la, $lb, 'LEFT', 'RIGHT', 0));
    sleep 0.2;
    $p->cmd('RPUSH', $la, 'm');
    is($c->read_reply, 'm', 'BLMOVE src dst on two shards: woken, moved');
    is(flat($c->cmd('LRANGE', $lb, 0, -1)), 'm', 'the element is at dst');
    my ($za, $zb) = two_keys('zs');
    $c->send_raw(Kevy::Conn::encode('BZPOPMIN', $za, $zb, 0));
    sleep 0.2;
    $p->cmd('ZADD', $zb, 5, 'five');
    is(flat($c->read_reply), "$zb five 5", 'BZPOPMIN woken on the second shard');
    $c->cmd('DEL', $la, $lb);
    $c->send_raw(Kevy::Conn::encode('BLMPOP', 0, 2, $la, $lb, 'RIGHT', 'COUNT', 2));
    sleep 0.2;
    $p->cmd('RPUSH', $la, 1, 2, 3);
    is(flat($c->read_reply), "$la [3 2]", 'BLMPOP over two shards');

    # Many waiters, pushers on other workers: each element exactly once,
    # none lost at the timeout boundary.
    my ($qa, $qb) = two_keys('q');
    my $n = 12;
    my @w = map { $k->connect } 1 .. $n;
    $_->send_raw(Kevy::Conn::encode('BLPOP', $qa, $qb, 1)) for @w;
    sleep 0.3;
    my $pid = fork // die;
    if (!$pid) {
        my $pp = $k->connect;
        for my $i (1 .. $n + 4) { $pp->cmd('RPUSH', $i % 2 ? $qa : $qb, "e$i"); sleep 0.05 }
        POSIX::_exit(0);
    }
    my %seen;
    my $dup = 0;
    for my $x (@w) {
        my $r = $x->read_reply;
        next unless ref $r;
        $dup++ if $seen{ $r->[1] }++;
    }
    waitpid $pid, 0;
    my $left = $c->cmd('LRANGE', $qa, 0, -1);
    my $left2 = $c->cmd('LRANGE', $qb, 0, -1);
    $dup++ for grep { $seen{$_}++ } @$left, @$left2;
    is($dup, 0, 'no element delivered twice');
    is(scalar(keys %seen), $n + 4, 'every element delivered or still in its list (none lost)');

    # Disconnect while blocked, then CLIENT UNBLOCK.
    my $gone = $k->connect;
    $gone->send_raw(Kevy::Conn::encode('BLPOP', $la, $lb, 0));
    sleep 0.2;
    $gone->close;
    sleep 0.2;
    $c->cmd('DEL', $la, $lb);
    $p->cmd('RPUSH', $la, 'kept');
    is(flat($c->cmd('LRANGE', $la, 0, -1)), 'kept', 'a disconnected waiter takes nothing');
}

done_testing;
