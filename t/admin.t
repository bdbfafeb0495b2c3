# The master's HTTP endpoint on a real kevy.
use strict;
use warnings;
use Test::More;
use JSON::PP;
use lib 't/lib';
use Kevy;

my $k = Kevy->new(shards => 2);

my ($code, $body, $head) = $k->http('GET', '/healthz');
is($code, 200, '/healthz 200');
is($body, "ok\n", '/healthz body');

($code, $body, $head) = $k->http('GET', '/metrics');
is($code, 200, '/metrics 200');
like($head, qr{Content-Type: text/plain; version=0\.0\.4}i, 'Prometheus content type');
for my $m (qw(kevy_shard_up kevy_shard_restarts_total kevy_shard_pid kevy_shard_heartbeat_age_seconds
              kevy_shard_connected_clients kevy_shard_commands_processed_total kevy_shard_ring_backlog_frames)) {
    like($body, qr/^# TYPE $m (gauge|counter)$/m, "$m declared");
    like($body, qr/^$m\{shard="1"\} [0-9.e+-]+$/m, "$m for shard 1");
}
like($body, qr/^kevy_master_uptime_seconds [0-9.]+$/m, 'master uptime');

# Commands and clients are counted per shard.
my $c = $k->connect;
$c->cmd('PING') for 1 .. 5;
Kevy::wait_until(sub {
    (undef, $body) = $k->http('GET', '/metrics');
    my $sum = 0;
    $sum += $1 while $body =~ /^kevy_shard_commands_processed_total\{shard="\d+"\} (\d+)$/mg;
    $sum >= 5;
}, 3);
my $sum = 0;
$sum += $1 while $body =~ /^kevy_shard_commands_processed_total\{shard="\d+"\} (\d+)$/mg;
is($sum, 5, 'commands processed counted');
my $clients = 0;
$clients += $1 while $body =~ /^kevy_shard_connected_clients\{shard="\d+"\} (\d+)$/mg;
is($clients, 1, 'connected clients counted');
$c->close;

($code, $body) = $k->http('GET', '/status');
is($code, 200, '/status 200');
my $st = eval { decode_json($body) };
ok($st, '/status is JSON') or diag $body;
is($st->{pid}, $k->{master}, '/status pid');
is(scalar @{ $st->{shards} }, 2, '/status lists the shards');
is($st->{shards}[0]{state}, 'up', 'shard state');

($code) = $k->http('GET', '/nope');
is($code, 404, 'unknown path 404');
($code) = $k->http('POST', '/healthz');
is($code, 405, 'POST 405');
my $r = $k->http_raw("GARBAGE\r\n\r\n");
like($r, qr{^HTTP/1\.1 400 }, 'malformed request 400');
$r = $k->http_raw("GET /healthz HTTP/1.1\r\nHost: x\r\n" . ("X-Pad: " . ('a' x 100) . "\r\n") x 100 . "\r\n");
like($r, qr{^HTTP/1\.1 400 }, 'oversize head 400');
is($k->cli('PING'), 'PONG', 'kevy unaffected by bad HTTP');

done_testing;
