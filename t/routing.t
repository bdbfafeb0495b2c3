# routing: slots — Redis Cluster's CRC16 slots in contiguous ranges per
# shard, with hash tags; keys land where a cluster-aware client expects.
use strict;
use warnings;
use Test::More;
use Time::HiRes qw(sleep);
use lib 't/lib';
use Kevy;

# CRC16-CCITT (XMODEM), as Redis Cluster.
sub crc16 {
    my $crc = 0;
    for my $b (unpack 'C*', shift) {
        $crc ^= $b << 8;
        for (1 .. 8) { $crc = ($crc & 0x8000) ? (($crc << 1) ^ 0x1021) & 0xffff : ($crc << 1) & 0xffff }
    }
    return $crc;
}
sub slot {
    my $k = shift;
    if ($k =~ /\{([^}]+)\}/ && index($k, '{') == $-[0]) { $k = $1 }
    return crc16($k) & 16383;
}
is(crc16('123456789'), 0x31c3, 'CRC16 reference vector');

my $k = Kevy->new(shards => 2, yaml => "routing: slots\n");


my $ok = 1;
for my $key (qw(foo bar baz user:1000 {user1000}.following a b c)) {
    my $want = int(slot($key) * 2 / 16384);
    my $got = $k->owner_of($key);
    $ok = 0 unless defined $got && $got == $want;
    diag "$key: slot " . slot($key) . " expected shard $want, got " . ($got // 'none') unless defined $got && $got == $want;
}
ok($ok, 'each key runs on the shard owning its slot range');

my $c = $k->connect;
is($c->cmd('MSET', map { ("k$_", $_) } 1 .. 50), '+OK', 'MSET across slot ranges');
is_deeply($c->cmd('MGET', map { "k$_" } 1 .. 50), [ 1 .. 50 ], 'MGET across slot ranges');
is($c->cmd('DBSIZE'), ':50', 'DBSIZE');

done_testing;
