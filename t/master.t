# Master and workers: pinning, titles, PING through redis-cli, respawn after
# kill -9 with /healthz and /metrics following, crash-loop backoff, SIGTERM.
use strict;
use warnings;
use Test::More;
use Time::HiRes qw(sleep time);
use lib 't/lib';
use Kevy;

my $ncpu = () = grep { /^processor/ } do { open my $f, '<', '/proc/cpuinfo'; <$f> };
my $n = $ncpu >= 2 ? 2 : 1;
my $k = Kevy->new(shards => $n);

# N workers, each pinned to its own CPU, titled, children of the master.
my $w = $k->workers;
is(scalar keys %$w, $n, "$n workers running");
my %cpus;
for my $id (sort keys %$w) {
    open my $f, '<', "/proc/$w->{$id}/status" or die;
    my ($list) = map { /^Cpus_allowed_list:\s*(\S+)/ ? $1 : () } <$f>;
    like($list, qr/^\d+$/, "worker $id pinned to a single CPU ($list)");
    $cpus{$list}++;
}
is(scalar keys %cpus, $n, 'pinned to distinct CPUs');
{
    open my $f, '<', "/proc/$k->{master}/cmdline";
    my $cmd = <$f>;
    like($cmd, qr/^kevy: master/, 'master process title');
}

# PING through redis-cli, and the raw protocol.
is($k->cli('PING'), 'PONG', 'redis-cli PING');
is($k->cli('ECHO', 'hello'), 'hello', 'redis-cli ECHO');
my $c = $k->connect;
is($c->cmd('PING'), '+PONG', 'PING');
is($c->cmd('ping', 'x y'), 'x y', 'PING with a message');
$c->close;

# kill -9 one worker: a new pid, /healthz 503 then 200, restart counted.
my ($victim_id) = sort keys %$w;
my $old = $w->{$victim_id};
my ($code) = $k->http('GET', '/healthz');
is($code, 200, '/healthz 200 before');
# A stopped worker stops beating: /healthz turns 503 within the heartbeat
# timeout (3 s), naming it; then kill -9 it.
kill 'STOP', $old;
my ($c503, $body503);
Kevy::wait_until(sub { ($c503, $body503) = $k->http('GET', '/healthz'); $c503 == 503 }, 8);
is($c503, 503, '/healthz 503 while the worker does not beat');
like($body503, qr/"shard":$victim_id/, '503 body names the down shard');
kill 'KILL', $old;
ok(Kevy::wait_until(sub { ($code) = $k->http('GET', '/healthz'); $code == 200 }, 10), '/healthz 200 again');
my $new = $k->workers->{$victim_id};
ok($new && $new != $old, "worker $victim_id respawned with a new pid ($old -> " . ($new // 'none') . ')');
my (undef, $metrics) = $k->http('GET', '/metrics');
like($metrics, qr/^kevy_shard_restarts_total\{shard="$victim_id"\} 1$/m, 'restart counted in /metrics');
like($metrics, qr/^kevy_shard_pid\{shard="$victim_id"\} $new$/m, 'new pid in /metrics');
is($k->cli('PING'), 'PONG', 'serving after the respawn');
like($k->log_text, qr/worker $victim_id \(pid $old\) was killed by signal 9/, 'death logged');

# Crash loop: kill each new incarnation as soon as it appears.
my $last = $new;
for my $round (1 .. 4) {
    kill 'KILL', $last;
    my $next;
    Kevy::wait_until(sub { $next = $k->workers->{$victim_id}; $next && $next != $last }, 15) or last;
    $last = $next;
}
like($k->log_text, qr/worker $victim_id .*crash-looping \(\d+ exits within 1000ms of start\), next respawn in \d+ms/,
     'crash loop logged with its backoff');
ok($k->wait_ready(20), 'recovered after the crash loop');

# SIGTERM: every process gone, exit 0, pid file removed.
my @all = ($k->{master}, values %{ $k->workers });
is($k->stop('TERM'), 0, 'SIGTERM: master exits 0');
ok(!(grep { Kevy::alive($_) } @all), 'every kevy process is gone');
ok(!-e $k->{pid_file}, 'pid file removed');

done_testing;
