# Transactions under concurrency, 3 shards: WATCH retry loops from clients
# on several workers converge with no lost update; transfers inside
# MULTI/EXEC are never seen half done; cross-shard transactions answer
# CROSSSLOT (as Redis Cluster) until atomic cross-shard transactions land.
use strict;
use warnings;
use Test::More;
use POSIX qw(:sys_wait_h);
use lib 't/lib';
use Kevy;

my $k = Kevy->new(shards => 3);
my $c = $k->connect;
$c->cmd('SET', '{bank}counter', 0);
$c->cmd('MSET', '{bank}a', 1000, '{bank}b', 1000);

# WATCH/INCR retry loops in 4 processes (their connections spread over the
# workers), 200 increments each.
my @pids;
for my $p (1 .. 4) {
    my $pid = fork // die;
    if ($pid == 0) {
        my $w = $k->connect;
        my $done = 0;
        while ($done < 200) {
            $w->cmd('WATCH', '{bank}counter');
            my $v = $w->cmd('GET', '{bank}counter');
            $w->cmd('MULTI');
            $w->cmd('SET', '{bank}counter', $v + 1);
            my $r = $w->cmd('EXEC');
            $done++ if ref $r eq 'ARRAY';
        }
        # and transfers between a and b
        for my $i (1 .. 200) {
            $w->cmd('MULTI');
            $w->cmd('DECRBY', '{bank}a', 7);
            $w->cmd('INCRBY', '{bank}b', 7);
            $w->cmd('EXEC');
        }
        POSIX::_exit(0);
    }
    push @pids, $pid;
}
# Meanwhile a reader checks the invariant a + b = 2000.
my ($reads, $broken) = (0, 0);
while (grep { waitpid($_, WNOHANG) == 0 } @pids) {
    my $r = $c->cmd('MGET', '{bank}a', '{bank}b');
    $reads++;
    $broken++ if $r->[0] + $r->[1] != 2000;
}
waitpid($_, 0) for @pids;
is($c->cmd('GET', '{bank}counter'), 800, 'WATCH retry loops: 800 increments, none lost');
is($broken, 0, "a + b stayed 2000 in all $reads reads during the transfers");
is_deeply($c->cmd('MGET', '{bank}a', '{bank}b'), [ 1000 - 7 * 800, 1000 + 7 * 800 ], 'all transfers applied');

# Another client's write aborts our EXEC.
my $o = $k->connect;
$c->cmd('WATCH', '{bank}counter');
$o->cmd('INCR', '{bank}counter');
$c->cmd('MULTI');
$c->cmd('INCR', '{bank}counter');
is($c->cmd('EXEC'), undef, "another client's write to a watched key: EXEC returns nil");

# Keys on several shards.
$c->cmd('MULTI');
$c->cmd('SET', 'x1', 1);
$c->cmd('SET', 'x2', 2);
$c->cmd('SET', 'x3', 3);
$c->cmd('SET', 'x4', 4);
is($c->cmd('EXEC'), "-CROSSSLOT Keys in request don't hash to the same slot", 'cross-shard transaction refused');
is($c->cmd('EXISTS', 'x1', 'x2', 'x3', 'x4'), ':0', 'and nothing of it ran');
is($c->cmd('PING'), '+PONG', 'the connection is usable after it');

done_testing;
