# Blocking commands whose keys live on one shard (block.c, docs/blocking.md),
# with 1 and 3 shards: woken by a write from another connection (on another
# worker than the blocked client, which with 3 shards is not the key's
# owner either), timeouts, FIFO order, exactly-once delivery, disconnects,
# CLIENT UNBLOCK, MULTI, pipelining, INFO blocked_clients, the AOF, and a
# kill -9 of the owner while a client waits. Timings are loose on purpose.
use strict;
use warnings;
use Test::More;
use IO::Select;
use Time::HiRes qw(sleep time);
use lib 't/lib';
use Kevy;

sub flat {
    my $r = shift;
    return '(nil)' unless defined $r;
    return ref $r ? '[' . join(' ', map { flat($_) } @$r) . ']' : $r;
}

# The reply if one arrives within $secs, else 'PENDING' (nothing read).
sub reply_within {
    my ($c, $secs) = @_;
    return $c->read_reply if length $c->{buf} || IO::Select->new($c->{s})->can_read($secs);
    return 'PENDING';
}

sub send_cmd { my ($c, @a) = @_; $c->send_raw(Kevy::Conn::encode(@a)) }

sub blocked_clients {
    my $k = shift;
    my $info = $k->connect->cmd('INFO', 'clients');
    return $info =~ /blocked_clients:(\d+)/ ? $1 : -1;
}

sub run_suite {
    my ($shards) = @_;
    my $k = Kevy->new(shards => $shards,
                      yaml => "persistence: {aof: {enabled: true, fsync: always}, snapshot: {save: []}}\n");
    my $worker = sub { my $c = shift; (my $id = $c->cmd('CLIENT', 'ID')) =~ s/^://; $id % $shards };
    # A connection on a worker not in @avoid (any one with a single shard).
    my $conn_avoiding = sub {
        my @avoid = @_;
        for (1 .. 60) {
            my $c = $k->connect;
            my $w = $worker->($c);
            return $c if $shards == 1 || !grep { $_ == $w } @avoid;
            $c->close;
        }
        die "no connection on another worker";
    };
    my $owner = $shards == 1 ? 0 : $k->owner_of('{t}');
    my $a = $conn_avoiding->($owner);                   # blocked, remote from the key
    my $p = $conn_avoiding->($owner, $worker->($a));    # the writer, a third worker
    my $tag = "[$shards shard" . ($shards > 1 ? 's' : '') . ']';

    # ---- each command, woken by a write from another worker -----------------------
    my @cases = (
        [ [ 'BLPOP', '{t}l1', '{t}l2', 0 ], [ 'RPUSH', '{t}l2', 'x' ], '[{t}l2 x]' ],
        [ [ 'BRPOP', '{t}l', 0 ], [ 'RPUSH', '{t}l', 'a', 'b' ], '[{t}l b]', [ 'LRANGE', '{t}l', 0, -1 ], '[a]' ],
        [ [ 'BLMOVE', '{t}src', '{t}dst', 'LEFT', 'RIGHT', 0 ], [ 'RPUSH', '{t}src', 'v' ], 'v',
          [ 'LRANGE', '{t}dst', 0, -1 ], '[v]' ],
        [ [ 'BRPOPLPUSH', '{t}src', '{t}dst', 0 ], [ 'RPUSH', '{t}src', 'w' ], 'w', [ 'LRANGE', '{t}dst', 0, -1 ], '[w v]' ],
        [ [ 'BLMPOP', 0, 2, '{t}m1', '{t}m2', 'LEFT', 'COUNT', 2 ], [ 'RPUSH', '{t}m2', 1, 2, 3 ], '[{t}m2 [1 2]]' ],
        [ [ 'BZPOPMIN', '{t}z1', '{t}z', 0 ], [ 'ZADD', '{t}z', 2, 'b', 1, 'a' ], '[{t}z a 1]' ],
        [ [ 'BZPOPMAX', '{t}zm', 0 ], [ 'ZADD', '{t}zm', 3, 'c', 7, 'd' ], '[{t}zm d 7]' ],
        [ [ 'BZMPOP', 0, 1, '{t}zz', 'MAX', 'COUNT', 5 ], [ 'ZADD', '{t}zz', 1, 'a', 2, 'b' ], '[{t}zz [[b 2] [a 1]]]' ],
        [ [ 'XREAD', 'BLOCK', 0, 'STREAMS', '{t}s', '$' ], [ 'XADD', '{t}s', '5-1', 'f', 'v' ], '[[{t}s [[5-1 [f v]]]]]' ],
        [ [ 'XREAD', 'BLOCK', 0, 'STREAMS', '{t}s', '$' ], [ 'XADD', '{t}s', '6-1', 'g', 'w' ], '[[{t}s [[6-1 [g w]]]]]' ],
        [ [ 'XREADGROUP', 'GROUP', 'g', 'c1', 'BLOCK', 0, 'STREAMS', '{t}s', '>' ], [ 'XADD', '{t}s', '7-1', 'h', 'x' ],
          '[[{t}s [[7-1 [h x]]]]]', [ 'XPENDING', '{t}s', 'g' ], '[:1 7-1 7-1 [[c1 1]]]' ],
    );
    $p->cmd('XGROUP', 'CREATE', '{t}s', 'g', '6-1', 'MKSTREAM');    # its reader waits for 7-1
    for my $case (@cases) {
        my ($block, $write, $want, $check, $cwant) = @$case;
        my $name = $block->[0];
        send_cmd($a, @$block);
        is(reply_within($a, 0.15), 'PENDING', "$tag $name waits");
        $p->cmd(@$write);
        is(flat(reply_within($a, 3)), $want, "$tag $name, then $write->[0] from another worker: $want");
        is(flat($p->cmd(@$check)), $cwant, "$tag ... and @$check is $cwant") if $check;
    }
    is($p->cmd('XLEN', '{t}s'), ':3', "$tag the stream kept its entries");

    # A key of another type keeps a list waiter waiting (Redis 7.0).
    send_cmd($a, 'BLPOP', '{t}ty', 0);
    sleep 0.1;                          # (the two requests come over two rings)
    $p->cmd('SET', '{t}ty', 'str');
    is(reply_within($a, 0.2), 'PENDING', "$tag BLPOP on a key that became a string still waits");
    $p->cmd('DEL', '{t}ty');
    $p->cmd('LPUSH', '{t}ty', 'ok');
    is(flat(reply_within($a, 3)), '[{t}ty ok]', "$tag ... and takes the list pushed later");

    # A served BLMOVE pushes to a key another client waits on.
    my $b = $conn_avoiding->($owner);
    send_cmd($a, 'BLMOVE', '{t}c1', '{t}c2', 'RIGHT', 'LEFT', 0);
    sleep 0.1;
    send_cmd($b, 'BLPOP', '{t}c2', 0);
    sleep 0.1;
    $p->cmd('RPUSH', '{t}c1', 'hop');
    is(flat(reply_within($a, 3)), 'hop', "$tag chain: BLMOVE c1 c2 served");
    is(flat(reply_within($b, 3)), '[{t}c2 hop]', "$tag chain: ... and the BLPOP on c2 after it");

    # ---- timeouts -------------------------------------------------------------------------
    for my $t ([ [ 'BLPOP', '{t}none', '0.3' ], 0.3 ], [ [ 'BZPOPMIN', '{t}none', '0.25' ], 0.25 ],
               [ [ 'BLMOVE', '{t}none', '{t}d', 'LEFT', 'LEFT', '0.2' ], 0.2 ],
               [ [ 'XREAD', 'BLOCK', 250, 'STREAMS', '{t}none', '$' ], 0.25 ]) {
        my ($cmd, $secs) = @$t;
        my $t0 = time;
        my $r = $a->cmd(@$cmd);
        my $el = time - $t0;
        is($r, undef, "$tag $cmd->[0] times out with nil");
        ok($el >= $secs - 0.05 && $el < $secs + 2, sprintf("$tag ... after %.2fs (asked %.2fs)", $el, $secs));
    }

    # ---- FIFO among waiters, exactly-once delivery ------------------------------------------
    my @w = map { $conn_avoiding->() } 1 .. 4;
    for my $c (@w) { send_cmd($c, 'BLPOP', '{t}fifo', 0); sleep 0.05 }
    sleep 0.1;
    is(blocked_clients($k), 4, "$tag INFO blocked_clients counts the 4 waiters");
    $p->cmd('RPUSH', '{t}fifo', 1 .. 4);
    is(join(',', map { flat(reply_within($_, 3)) } @w), '[{t}fifo 1],[{t}fifo 2],[{t}fifo 3],[{t}fifo 4]',
       "$tag waiters are served in the order they blocked");

    my @many = map { $conn_avoiding->() } 1 .. 10;
    send_cmd($_, 'BLPOP', '{t}eo', 0) for @many;
    sleep 0.2;
    my $p2 = $conn_avoiding->();
    ($_ % 2 ? $p : $p2)->cmd('LPUSH', '{t}eo', "e$_") for 1 .. 10;
    my %got;
    for my $c (@many) { my $r = reply_within($c, 3); $got{ ref $r ? $r->[1] : flat($r) }++ }
    is(join(',', sort keys %got), join(',', sort map { "e$_" } 1 .. 10), "$tag 10 waiters, 10 pushes: each element once");
    is($p->cmd('LLEN', '{t}eo'), ':0', "$tag ... none left over");

    # More waiters than elements, short timeouts: each element once, the rest nil.
    send_cmd($_, 'BRPOP', '{t}eo', '1') for @many;
    sleep 0.2;
    $p->cmd('RPUSH', '{t}eo', "f$_") for 1 .. 6;
    %got = ();
    my $nils = 0;
    for my $c (@many) {
        my $r = reply_within($c, 4);
        if (ref $r) { $got{ $r->[1] }++ } else { $nils++ }
    }
    is(join(',', sort keys %got), join(',', map { "f$_" } 1 .. 6), "$tag 10 waiters, 6 elements: each once");
    is($nils, 4, "$tag ... and the 4 others time out");
    is(blocked_clients($k), 0, "$tag nobody blocked any more");

    # ---- disconnects, CLIENT UNBLOCK, MULTI, pipelining --------------------------------------------
    my $gone = $conn_avoiding->($owner);
    send_cmd($gone, 'BLPOP', '{t}dc', 0);
    sleep 0.1;
    $gone->close;
    sleep 0.2;
    $p->cmd('RPUSH', '{t}dc', 'kept');
    is(flat($p->cmd('LRANGE', '{t}dc', 0, -1)), '[kept]', "$tag a disconnected waiter takes nothing");

    (my $aid = $a->cmd('CLIENT', 'ID')) =~ s/^://;
    send_cmd($a, 'BLPOP', '{t}ub', 0);
    sleep 0.1;
    is($p->cmd('CLIENT', 'UNBLOCK', $aid), ':1', "$tag CLIENT UNBLOCK of a blocked client: 1");
    is(flat(reply_within($a, 3)), '(nil)', "$tag ... which gets the timeout reply");
    send_cmd($a, 'XREAD', 'BLOCK', 0, 'STREAMS', '{t}s', '$');
    sleep 0.1;
    is($p->cmd('CLIENT', 'UNBLOCK', $aid, 'ERROR'), ':1', "$tag CLIENT UNBLOCK id ERROR: 1");
    is(reply_within($a, 3), '-UNBLOCKED client unblocked via CLIENT UNBLOCK', "$tag ... which gets -UNBLOCKED");
    is($p->cmd('CLIENT', 'UNBLOCK', $aid), ':0', "$tag CLIENT UNBLOCK of a client not blocked: 0");
    $a->send_raw(Kevy::Conn::encode('BLPOP', '{t}ub', 0) . Kevy::Conn::encode('BRPOP', '{t}ub2', 0));
    sleep 0.1;
    $p->cmd('CLIENT', 'UNBLOCK', $aid);
    is(flat(reply_within($a, 3)), '(nil)', "$tag unblocked with a blocking command pipelined behind");
    is(reply_within($a, 0.2), 'PENDING', "$tag ... which then blocks in turn");
    $p->cmd('RPUSH', '{t}ub2', 'y');
    is(flat(reply_within($a, 3)), '[{t}ub2 y]', "$tag ... and is served");
    is($p->cmd('RPUSH', '{t}ub', 'x'), ':1', "$tag the unblocked BLPOP took nothing");

    my $t0 = time;
    $a->cmd('MULTI');
    $a->cmd('BLPOP', '{t}mx', 0);
    $a->cmd('BLMOVE', '{t}mx', '{t}my', 'LEFT', 'LEFT', 0);
    $a->cmd('XREAD', 'BLOCK', 0, 'STREAMS', '{t}mx2', '$');
    is(flat($a->cmd('EXEC')), '[(nil) (nil) (nil)]', "$tag blocking commands in MULTI answer nil at once");
    ok(time - $t0 < 2, "$tag ... without waiting");

    $a->send_raw(join '', map { Kevy::Conn::encode(@$_) } [ 'BLPOP', '{t}pp', 0 ], ['PING'], [ 'LPUSH', '{t}pp', 'me' ]);
    is(reply_within($a, 0.3), 'PENDING', "$tag pipelined commands wait behind a blocked one");
    $p->cmd('RPUSH', '{t}pp', 'first');
    is(flat(reply_within($a, 3)), '[{t}pp first]', "$tag ... it is served");
    is(reply_within($a, 3), '+PONG', "$tag ... then the next command runs");
    is(reply_within($a, 3), ':1', "$tag ... and the one after it");

    # ---- the AOF logs what a replay can redo ---------------------------------------------------
    send_cmd($a, 'BLPOP', '{t}aof', '{t}aof2', 0);
    sleep 0.1;
    $p->cmd('RPUSH', '{t}aof2', 'p1', 'p2');
    is(flat(reply_within($a, 3)), '[{t}aof2 p1]', "$tag BLPOP served for the AOF check");
    my $aof = '';
    for my $f (glob "$k->{dir}/data/shard-*.aof") { local $/; open my $fh, '<', $f or next; $aof .= <$fh> }
    unlike($aof, qr/\r\nBLPOP\r\n|\r\nBLMOVE\r\n|\r\nBZPOPMIN\r\n/i, "$tag no blocking command in the AOF");
    like($aof, qr/\r\nLPOP\r\n\$7\r\n\{t\}aof2\r\n/, "$tag ... LPOP {t}aof2 instead");

    # ---- kill -9 of the key's shard while a client waits on it -----------------------------------
    send_cmd($a, 'BLPOP', '{t}kill', 0);
    sleep 0.1;
    my $victim = $k->workers->{$owner};
    kill 'KILL', $victim;
    if ($shards > 1) {
        like(reply_within($a, 5), qr/^-LOADING kevy shard $owner is restarting/, "$tag the waiter gets an error when its shard dies");
        is($a->cmd('PING'), '+PONG', "$tag ... and its connection goes on");
    } else {
        is(reply_within($a, 5), 'EOF', "$tag one shard: the waiter's connection closes with its worker");
    }
    ok(Kevy::wait_until(sub { ($k->workers->{$owner} // $victim) != $victim }, 5), "$tag the shard's worker is respawned");
    ok($k->wait_ready(10), "$tag ... and ready");
    my $n = $k->connect;
    ok(Kevy::wait_until(sub { ($n->cmd('RPUSH', '{t}kill', 'after') // '') =~ /^:/ }, 10), "$tag writes work again");
    is(flat($n->cmd('BLPOP', '{t}kill', 1)), '[{t}kill after]', "$tag ... and BLPOP takes them");
    is(flat($n->cmd('LRANGE', '{t}aof2', 0, -1)), '[p2]', "$tag the respawned shard replayed LPOP from its AOF");

    # ---- FLUSHALL / FLUSHDB: XREADGROUP waiters are told, as in Redis 7.0 ------------------------
    # (the connections of the one-shard run died with its worker: new ones)
    my ($fa, $fb, $fp) = map { $k->connect } 1 .. 3;
    for my $flush ('FLUSHALL', 'FLUSHDB') {
        $fp->cmd('XGROUP', 'CREATE', '{t}fs', 'g', '$', 'MKSTREAM');
        send_cmd($fa, 'XREADGROUP', 'GROUP', 'g', 'c', 'BLOCK', 0, 'STREAMS', '{t}fs', '>');
        send_cmd($fb, 'BLPOP', '{t}fl', 0);
        sleep 0.2;
        is($fp->cmd($flush), '+OK', "$tag $flush with waiters");
        is(reply_within($fa, 3), '-UNBLOCKED the stream key no longer exists', "$tag ... XREADGROUP gets -UNBLOCKED");
        is(reply_within($fb, 0.3), 'PENDING', "$tag ... BLPOP goes on waiting");
        $fp->cmd('RPUSH', '{t}fl', 'z');
        is(flat(reply_within($fb, 3)), '[{t}fl z]', "$tag ... and is served by the next push");
    }
}

run_suite(1);
run_suite(3);

done_testing;
