# Keys across shards: forwarding over the rings, replies in command order,
# multi-key and all-shard commands, SCAN across shards, hash tags, and a
# peer killed mid-request.
use strict;
use warnings;
use Test::More;
use IO::Select;
use Time::HiRes qw(sleep time);
use lib 't/lib';
use Kevy;

my $k = Kevy->new(shards => 3);

# Per-shard commands processed, from /metrics.

my $c = $k->connect;
is($c->cmd('SET', 'a', '1'), '+OK', 'SET');
is($c->cmd('GET', 'a'), '1', 'GET');

# A pipeline over keys of every shard: replies in command order.
my $n = 10000;
$c->send_raw(join '', map { Kevy::Conn::encode('SET', "key:$_", "v$_") . Kevy::Conn::encode('GET', "key:$_") } 1 .. $n);
my $bad = 0;
for my $i (1 .. $n) {
    $bad++ if $c->read_reply ne '+OK';
    $bad++ if ($c->read_reply // '') ne "v$i";
}
is($bad, 0, "$n SET+GET pairs pipelined across shards, replies in order");

# The keys really are spread: every shard ran some of them.
my $cnt;
Kevy::wait_until(sub { $cnt = $k->shard_counts; 3 == grep { $cnt->{$_} > 1000 } keys %$cnt }, 3);
is(scalar(grep { $cnt->{$_} > 1000 } keys %$cnt), 3, 'every shard executed commands');

# Multi-key and all-shard commands.
is($c->cmd('DBSIZE'), ':' . ($n + 1), 'DBSIZE sums the shards');
is($c->cmd('MSET', map { ("m$_", "x$_") } 1 .. 20), '+OK', 'MSET across shards');
is_deeply($c->cmd('MGET', 'm3', 'nokey', 'm1', 'm20', 'm3'), ['x3', undef, 'x1', 'x20', 'x3'], 'MGET in key order');
is($c->cmd('EXISTS', 'm1', 'm2', 'm1', 'nope'), ':3', 'EXISTS counts across shards');
is($c->cmd('DEL', map { "m$_" } 1 .. 10, 'nope'), ':10', 'DEL counts across shards');
my $keys = $c->cmd('KEYS', 'm*');
is_deeply([ sort @$keys ], [ sort map { "m$_" } 11 .. 20 ], 'KEYS gathers every shard');
ok(defined $c->cmd('RANDOMKEY'), 'RANDOMKEY');

# SCAN: a full iteration returns every key, cursors crossing shards.
my %seen; my $cursor = 0; my $calls = 0;
do {
    my $r = $c->cmd('SCAN', $cursor, 'COUNT', 500);
    ($cursor, my $batch) = @$r;
    $seen{$_}++ for @$batch;
    $calls++;
} while ($cursor ne '0' && $calls < 10000);
is(scalar(grep { /^key:/ } keys %seen), $n, 'SCAN returned every key');
is($c->cmd('SCAN', 'abc'), '-ERR invalid cursor', 'SCAN invalid cursor');

# SCAN's guarantee while the keyspace changes under it (and the dicts
# grow and rehash): every key present throughout is returned.
{
    my $w = $k->connect;
    my (%got, $cur, $i) = ();
    $cur = 0; $i = 0;
    do {
        my $r = $c->cmd('SCAN', $cur, 'COUNT', 200);
        ($cur, my $batch) = @$r;
        $got{$_}++ for @$batch;
        # churn: add 300 new keys and delete 100 of the new ones per step
        $w->send_raw(join '', map { Kevy::Conn::encode('SET', "churn:$i:$_", 'x') } 1 .. 300);
        $w->send_raw(join '', map { Kevy::Conn::encode('DEL', "churn:$i:$_") } 1 .. 100);
        $w->read_reply for 1 .. 400;
        $i++;
    } while ($cur ne '0' && $i < 5000);
    my $missing = grep { !$got{"key:$_"} } 1 .. $n;
    is($missing, 0, "SCAN under churn ($i calls) returned every stable key");
    $w->close;
}
my $m = $c->cmd('SCAN', 0, 'MATCH', 'key:1????', 'COUNT', 100000);
ok(ref $m eq 'ARRAY', 'SCAN MATCH');

# Hash tags put keys on one shard: a tagged pipeline runs on one owner.
my $o1 = $k->owner_of('{user42}.a');
my $o2 = $k->owner_of('{user42}.b');
ok(defined $o1 && $o1 eq $o2, "{user42}.a and {user42}.b share shard " . ($o1 // '?'));

# Keys and values that do not pair up get the handler's error, unsplit.
is($c->cmd('MSET', 'p1', 'v1', 'p2'), "-ERR wrong number of arguments for 'mset' command", 'MSET odd arguments');
is($c->cmd('EXISTS', 'p1', 'p2'), ':0', 'and nothing was written');

# Multi-round commands across shards: MSETNX, RENAME, RENAMENX, COPY.
my @spread = map { "n$_" } 1 .. 12;
is($c->cmd('MSETNX', map { ($_, "v$_") } @spread), ':1', 'MSETNX across shards: all new');
is($c->cmd('MSETNX', 'fresh', 'x', $spread[5], 'y'), ':0', 'MSETNX: one exists -> 0');
is($c->cmd('EXISTS', 'fresh'), ':0', 'MSETNX wrote nothing');
is_deeply($c->cmd('MGET', @spread), [ map { "v$_" } @spread ], 'MSETNX values');
for my $i (1 .. 12) {
    is($c->cmd('RENAME', "n$i", "moved$i"), '+OK', "RENAME n$i") if $i <= 3;
}
is_deeply($c->cmd('MGET', 'moved1', 'moved2', 'moved3', 'n1'), [ 'vn1', 'vn2', 'vn3', undef ], 'RENAME moved the values');
is($c->cmd('RENAME', 'missing', 'x'), '-ERR no such key', 'RENAME of a missing key');
$c->cmd('SET', 'ttlkey', 'tv', 'EX', 100);
my $moved_ttl_ok = 1;
for my $i (1 .. 6) {
    my $dst = "ttl_dst$i";
    $c->cmd('RENAME', ($i == 1 ? 'ttlkey' : 'ttl_dst' . ($i - 1)), $dst);
    my $t = $c->cmd('TTL', $dst);
    $moved_ttl_ok = 0 unless $t =~ /^:(9\d|100)$/;
}
ok($moved_ttl_ok, 'RENAME keeps the TTL across shards');
is($c->cmd('COPY', 'moved1', 'copy1'), ':1', 'COPY');
is($c->cmd('COPY', 'moved1', 'copy1'), ':0', 'COPY onto an existing key');
is($c->cmd('SET', 'moved1', 'changed'), '+OK', 'change the source');
is($c->cmd('COPY', 'moved1', 'copy1', 'REPLACE'), ':1', 'COPY REPLACE');
is($c->cmd('GET', 'copy1'), 'changed', 'COPY REPLACE copied the new value');
is($c->cmd('RENAMENX', 'moved2', 'copy1'), ':0', 'RENAMENX onto an existing key');
is($c->cmd('RENAMENX', 'moved2', 'nx_new'), ':1', 'RENAMENX');
is_deeply($c->cmd('MGET', 'moved2', 'nx_new'), [ undef, 'vn2' ], 'RENAMENX moved it');
is($c->cmd('kevy.export', 'copy1', '0'), "-ERR unknown command 'kevy.export', with args beginning with: 'copy1' '0' ",
   'internal commands are not for clients');

# Pipelined after a multi-round command, the next commands see its
# effects; errors the worker writes itself keep their place in line.
{
    my $bad = 0;
    for my $i (1 .. 100) {
        $c->send_raw(join '', map { Kevy::Conn::encode(@$_) }
            [ 'SET', "ord_src$i", "v$i" ], [ 'NOSUCHCMD', 'x' ], [ 'RENAME', "ord_src$i", "ord_dst$i" ],
            [ 'GET', "ord_dst$i" ], [ 'GET' ], [ 'EXISTS', "ord_src$i" ],
            [ 'SADD', "ord_a$i", 'x', 'y' ], [ 'SADD', "ord_b$i", 'y', 'z' ],
            [ 'SUNIONSTORE', "ord_u$i", "ord_a$i", "ord_b$i" ], [ 'SCARD', "ord_u$i" ]);
        my @r = map { $c->read_reply } 1 .. 10;
        my @want = ('+OK', "-ERR unknown command 'NOSUCHCMD', with args beginning with: 'x' ", '+OK', "v$i",
                    "-ERR wrong number of arguments for 'get' command", ':0', ':2', ':2', ':3', ':3');
        $bad++ unless join("\n", map { $_ // 'nil' } @r) eq join("\n", @want);
    }
    is($bad, 0, 'pipelines around multi-round commands keep order and effects (100 rounds)');
}

is($c->cmd('FLUSHALL'), '+OK', 'FLUSHALL');
is($c->cmd('DBSIZE'), ':0', 'every shard flushed');

# Expiry: lazily on access, and actively at hz on every shard, with no
# access at all (DBSIZE counts keys not yet reclaimed, as Redis).
{
    $c->send_raw(join '', map { Kevy::Conn::encode('SET', "exp$_", 'v', 'PX', 150) } 1 .. 3000);
    $c->read_reply for 1 .. 3000;
    $c->cmd('SET', 'lazy', 'v', 'PX', 100);
    is($c->cmd('DBSIZE'), ':3001', 'volatile keys stored');
    ok(Kevy::wait_until(sub { $c->cmd('DBSIZE') eq ':0' }, 10), 'the active expire cycle reclaimed them on every shard');
    is($c->cmd('GET', 'lazy'), undef, 'an expired key reads as missing');
    my $info = $c->cmd('INFO', 'stats');
    my ($expired) = $info =~ /expired_keys:(\d+)/;
    is($expired, 3001, 'INFO expired_keys summed over the shards');
}

# A peer killed mid-request: the caller gets -LOADING, not a hang, and the
# other shards keep serving.
{
    my $hold = $k->connect;
    # The worker holding this connection: client ids are id * shards + worker.
    my ($id) = $hold->cmd('CLIENT', 'ID') =~ /^:(\d+)/;
    my $mine = $id % 3;
    # A key owned by another shard.
    my $key;
    for my $i (1 .. 100) { my $o = $k->owner_of("victim$i"); if (defined $o && $o ne $mine) { $key = "victim$i"; last } }
    ok(defined $key, "found a key owned by another shard than $mine");
    my $owner = $k->owner_of($key);
    my $pid = $k->workers->{$owner};
    kill 'STOP', $pid;
    $hold->send_raw(Kevy::Conn::encode('GET', $key) . Kevy::Conn::encode('PING'));
    my $s = IO::Select->new($hold->{s});
    ok(!$s->can_read(0.5), 'no reply while the owner is stopped (request in flight)');
    kill 'KILL', $pid;
    my $t0 = time;
    my $r = $hold->read_reply;
    like($r, qr/^-LOADING /, "in-flight request failed with -LOADING ($r)");
    is($hold->read_reply, '+PONG', 'the next reply follows in order');
    ok(time - $t0 < 5, 'promptly');
    ok($k->wait_ready(10), 'the owner is respawned');
    is($hold->cmd('SET', $key, 'back'), '+OK', 'its keys are served again');
    is($hold->cmd('GET', $key), 'back', 'and read back');
}

done_testing;
