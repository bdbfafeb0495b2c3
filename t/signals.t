# Signals and -s: reload (bad file keeps serving; good file applies),
# reopen after rename, stop, graceful quit, and a second kevy refused.
use strict;
use warnings;
use Test::More;
use Time::HiRes qw(sleep time);
use lib 't/lib';
use Kevy;

sub kevy_s {
    my ($k, $sig) = @_;
    my $out = `$Kevy::BIN -c $k->{conf} -s $sig 2>&1`;
    return ($? >> 8, $out);
}

my $k = Kevy->new(shards => 2);
my $c = $k->connect;
is($c->cmd('PING'), '+PONG', 'serving');

# -s reload with a broken file: keeps running and serving, logs file:line.
open my $f, '>>', $k->{conf} or die;
print $f "bogus_key: 1\n";
close $f;
my ($rc, $out) = kevy_s($k, 'reload');
is($rc, 1, '-s reload with a broken file: exit 1, no signal sent');
like($out, qr/unknown key "bogus_key"\nkevy: signal not sent/, '-s reload names the error');
# The master itself, signalled anyway, validates too and keeps running.
kill 'HUP', $k->{master};
ok(Kevy::wait_until(sub { $k->log_text =~ /reload failed, keeping the running configuration: \Q$k->{conf}\E:\d+:1: unknown key "bogus_key"/ }, 5),
   'broken reload logged with file:line');
is($c->cmd('PING'), '+PONG', 'same connection still served after a bad reload');
is($k->cli('PING'), 'PONG', 'new connections still served');
ok(Kevy::alive($k->{master}), 'master alive');

# A good reload: reloadable keys applied, the others logged.
$k->{shards} = 1;
$k->{shutdown_timeout} = '7s';
$k->write_conf('');
($rc, $out) = kevy_s($k, 'reload');
is($rc, 0, "-s reload with a good file: exit 0") or diag $out;
ok(Kevy::wait_until(sub { $k->log_text =~ /configuration reloaded from/ }, 5), 'good reload logged');
my $log = $k->log_text;
like($log, qr/reload: shutdown_timeout changed/, 'reloadable change applied');
like($log, qr/reload: shards changed; it takes effect after a restart/, 'restart-only change named');
is($c->cmd('PING'), '+PONG', 'connection kept across the reload');
is(scalar keys %{ $k->workers }, 2, 'workers unchanged by the reload');

# log.level change reaches the workers: a verbose line stops appearing.
$k->{log_level} = 'warning';
$k->write_conf('');
kevy_s($k, 'reload');
ok(Kevy::wait_until(sub { $k->log_text =~ /reload: log.level changed/ }, 5), 'log.level reload');

# SIGUSR1 after renaming the log creates a new file.
$k->{log_level} = 'verbose';
$k->write_conf('');
kevy_s($k, 'reload');
Kevy::wait_until(sub { $k->log_text =~ /log.level changed.*log.level changed/s }, 5);
rename $k->{log}, "$k->{log}.1" or die;
($rc) = kevy_s($k, 'reopen');
is($rc, 0, '-s reopen sent');
ok(Kevy::wait_until(sub { -e $k->{log} }, 5), 'a new log file is created');
ok(Kevy::wait_until(sub { $k->log_text =~ /log file reopened/ }, 5), 'the new file is written');
# Workers write to the new file too: kill one, its respawn is logged there.
my ($wid, $wpid) = each %{ $k->workers };
kill 'KILL', $wpid;
ok(Kevy::wait_until(sub { $k->log_text =~ /worker \d+ ready/ }, 5), 'a respawned worker logs into the new file');

# A second kevy on the same pid file, or the same port, refuses.
{
    my $k2 = Kevy->new(no_start => 1, port => Kevy::free_port());
    $k2->{pid_file} = $k->{pid_file};
    $k2->write_conf('');
    my $o = `$Kevy::BIN -c $k2->{conf} 2>&1`;
    is($? >> 8, 1, 'second kevy on the same pid file: exit 1');
    like($o, qr/another kevy \(pid $k->{master}\) is running with pid file/, 'names the running master');

    my $k3 = Kevy->new(no_start => 1, port => $k->{port});
    $o = `$Kevy::BIN -c $k3->{conf} 2>&1`;
    is($? >> 8, 1, 'second kevy on the same port: exit 1');
    like($o, qr/listen 127.0.0.1:$k->{port}: address already in use/, 'names the address');
    ok(!-e $k3->{pid_file}, 'and leaves no pid file');
}
is($k->cli('PING'), 'PONG', 'the first kevy is unaffected');

# -s stop: exit 0, all gone.
my @procs = ($k->{master}, values %{ $k->workers });
$c->close;
($rc) = kevy_s($k, 'stop');
is($rc, 0, '-s stop sent');
my $end = time + 10;
sleep 0.05 while time < $end && Kevy::alive($k->{master});
waitpid($k->{master}, 0);
is($? >> 8, 0, 'master exit status 0');
delete $k->{master};
ok(!(grep { Kevy::alive($_) } @procs), 'all processes gone');
($rc, $out) = kevy_s($k, 'stop');
is($rc, 1, '-s stop with nothing running: exit 1');
like($out, qr/cannot open pid file .*is kevy running\?/, 'says why');

# SIGQUIT: stop accepting, let a connected client finish, then exit.
{
    my $q = Kevy->new(shards => 2, yaml => '');
    my $cl = $q->connect;
    is($cl->cmd('PING'), '+PONG', 'client connected before SIGQUIT');
    kill 'QUIT', $q->{master};
    ok(Kevy::wait_until(sub { !defined IO::Socket::INET->new(PeerAddr => "127.0.0.1:$q->{port}", Timeout => 1) }, 5),
       'no longer accepting');
    is($cl->cmd('ECHO', 'still'), 'still', 'the connected client is still served');
    ok(Kevy::alive($q->{master}), 'master waits for the client');
    is($cl->cmd('QUIT'), '+OK', 'client quits');
    $cl->close;
    is($q->stop('QUIT', 10), 0, 'then the master exits 0');
}

# SIGINT behaves as SIGTERM.
{
    my $i = Kevy->new(shards => 1);
    is($i->stop('INT'), 0, 'SIGINT: exit 0');
}

done_testing;
