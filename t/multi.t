# Transactions under concurrency, 3 shards: WATCH retry loops from clients
# on several workers converge with no lost update; transfers inside
# MULTI/EXEC are never seen half done, on one shard and across shards;
# cross-shard MSET and RENAME are never seen half done either.
use strict;
use warnings;
use Test::More;
use POSIX qw(:sys_wait_h);
use Time::HiRes qw(sleep);
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

# Keys on several shards: one transaction, atomic (docs/transactions.md).
my %on;
$on{ $k->owner_of("x$_") }++ for 1 .. 4;
ok(keys(%on) > 1, 'x1..x4 live on ' . scalar(keys %on) . ' shards');
$c->cmd('MULTI');
$c->cmd('SET', "x$_", $_) for 1 .. 4;
$c->cmd('INCR', 'x1');
$c->cmd('MGET', 'x1', 'x2', 'x3', 'x4');
$c->cmd('RENAME', 'x1', 'x5');
$c->cmd('GET', 'x5');
is_deeply($c->cmd('EXEC'), [ ('+OK') x 4, ':2', [ 2, 2, 3, 4 ], '+OK', 2 ], 'cross-shard EXEC: replies in order, a cross-shard RENAME inside');
$c->cmd('WATCH', 'x2', 'x3', 'x4');
$o->cmd('SET', 'x4', 40);
$c->cmd('MULTI');
$c->cmd('INCR', 'x2');
$c->cmd('INCR', 'x3');
is($c->cmd('EXEC'), undef, 'a watched key on another shard changed: EXEC returns nil');
is_deeply($c->cmd('MGET', 'x2', 'x3'), [ 2, 3 ], 'and nothing of it ran');
$c->cmd('WATCH', 'x2', 'x3');
$c->cmd('MULTI');
$c->cmd('INCR', 'x2');
$c->cmd('INCR', 'x3');
is_deeply($c->cmd('EXEC'), [ ':3', ':4' ], 'untouched watches on two shards: EXEC runs');
$c->cmd('MULTI');
$c->cmd('SET', 'x2', 'abc');
$c->cmd('INCR', 'x2');
$c->cmd('INCR', 'x3');
my $r = $c->cmd('EXEC');
like($r->[1], qr/^-ERR value is not an integer/, 'a runtime error inside a cross-shard EXEC ...');
is($r->[2], ':5', '... does not stop the other commands');
is($c->cmd('PING'), '+PONG', 'the connection is usable after it');

# Randomized: writers move amounts between accounts on different shards
# (plain MULTI and WATCH retry loops) while readers MGET them all, or read
# them in a transaction: the total never changes.
my @acct = map { "acct$_" } 1 .. 6;
my %sh;
$sh{ $k->owner_of($_) }++ for @acct;
ok(keys(%sh) > 1, 'the accounts span ' . scalar(keys %sh) . ' shards');
$c->cmd('SET', $_, 1000) for @acct;
$c->cmd('MSET', 'pair1', 0, 'pair2', 0, 'm1', 0, 'm2', 0, 'm3', 0, 'r1', 'v');
my $writers = 4;
@pids = ();
for my $p (1 .. $writers) {
    my $pid = fork // die;
    if ($pid == 0) {
        srand($$);
        my $w = $k->connect;
        for my $i (1 .. 150) {
            my ($x, $y) = (int rand 6, int rand 6);
            next if $x == $y;
            my $n = 1 + int rand 20;
            $w->cmd('MULTI');
            $w->cmd('DECRBY', $acct[$x], $n);
            $w->cmd('INCRBY', $acct[$y], $n);
            $w->cmd('EXEC');
        }
        my $tries = 0;
        for my $i (1 .. 50) {           # WATCH retry loop over two shards
            while (1) {
                $tries++;
                $w->cmd('WATCH', 'pair1', 'pair2');
                my ($a, $b) = @{ $w->cmd('MGET', 'pair1', 'pair2') };
                $w->cmd('MULTI');
                $w->cmd('SET', 'pair1', $a + 1);
                $w->cmd('SET', 'pair2', $b + 1);
                last if ref $w->cmd('EXEC') eq 'ARRAY';
            }
        }
        for my $i (1 .. 100) { $w->cmd('MSET', 'm1', "$p.$i", 'm2', "$p.$i", 'm3', "$p.$i") }
        if ($p == 1) {
            for my $i (1 .. 100) { $w->cmd('RENAME', 'r1', 'r2'); $w->cmd('RENAME', 'r2', 'r1') }
        }
        POSIX::_exit(0);
    }
    push @pids, $pid;
}
my ($mreads, $mbroken, $txreads, $txbroken, $msetbroken, $renbroken) = (0) x 6;
while (grep { waitpid($_, WNOHANG) == 0 } @pids) {
    my $sum = 0;
    $sum += $_ for @{ $c->cmd('MGET', @acct) };
    $mreads++;
    $mbroken++ if $sum != 6000;
    $c->cmd('MULTI');
    $c->cmd('GET', $_) for @acct;
    my $tx = $c->cmd('EXEC');
    $sum = 0;
    $sum += $_ for @$tx;
    $txreads++;
    $txbroken++ if $sum != 6000;
    my $m = $c->cmd('MGET', 'm1', 'm2', 'm3');
    $msetbroken++ if $m->[0] ne $m->[1] || $m->[1] ne $m->[2];
    $renbroken++ if $c->cmd('EXISTS', 'r1', 'r2') ne ':1';
}
waitpid($_, 0) for @pids;
is($mbroken, 0, "the total stayed 6000 in all $mreads cross-shard MGETs during the transfers");
is($txbroken, 0, "and in all $txreads cross-shard MULTI/GET.../EXEC reads");
my $sum = 0;
$sum += $_ for @{ $c->cmd('MGET', @acct) };
is($sum, 6000, 'the total is 6000 at the end');
is_deeply($c->cmd('MGET', 'pair1', 'pair2'), [ 50 * $writers, 50 * $writers ], 'WATCH retry loops over two shards converged, no update lost');
is($msetbroken, 0, 'a cross-shard MSET was never seen half applied');
is($renbroken, 0, 'a cross-shard RENAME was never seen half done (EXISTS src dst always 1)');

# A client that leaves in the middle of its cross-shard EXEC (here while a
# cross-shard RENAME inside it is between rounds) does not leave the
# transaction half run: every command of it runs, or none.
{
    my %tag;
    for my $t (1 .. 12) { my $o = $k->owner_of("{t$t}"); $tag{$o} //= "t$t"; last if keys %tag >= 2 }
    my ($ta, $tb) = (values %tag)[0, 1];
    my $big = 'v' x 200_000;
    my $n = 120;
    # The connections of the processes above may still be closing: count
    # once the number has settled.
    my $count = sub { ($c->cmd('INFO', 'clients') =~ /connected_clients:(\d+)/)[0] };
    my ($before, $prev) = ($count->(), -1);
    for (1 .. 50) { last if $before == $prev; sleep 0.2; ($prev, $before) = ($before, $count->()) }
    $c->cmd('SET', "{$ta}src$_", $big) for 1 .. $n;
    for my $i (1 .. $n) {
        my $q = $k->connect;
        $q->send_raw(join '', map { Kevy::Conn::encode(@$_) }
            [ 'MULTI' ], [ 'SET', "{$ta}k1:$i", 1 ], [ 'RENAME', "{$ta}src$i", "{$tb}dst$i" ],
            [ 'SET', "{$tb}k2:$i", 1 ], [ 'SET', "{$ta}k3:$i", 1 ], [ 'EXEC' ]);
        sleep(($i % 12) * 0.0002);
        $q->close;
    }
    # Every one of them gone (a client whose EXEC runs stays until its end).
    ok(Kevy::wait_until(sub { $count->() == $before }, 10), 'the clients left') or diag "connected_clients: " . $count->() . ", before: $before";
    my ($whole, $none, $half) = (0, 0, 0);
    for my $i (1 .. $n) {
        my $e = $c->cmd('EXISTS', "{$ta}k1:$i", "{$tb}dst$i", "{$tb}k2:$i", "{$ta}k3:$i");
        my $src = $c->cmd('EXISTS', "{$ta}src$i");
        if ($e eq ':4' && $src eq ':0') { $whole++ }
        elsif ($e eq ':0' && $src eq ':1') { $none++ }
        else { $half++; diag("transaction $i: EXISTS k1 dst k2 k3 = $e, src = $src") }
    }
    is($half, 0, "clients leaving mid-EXEC: $whole transactions ran whole, $none not at all, none half");
}

done_testing;
