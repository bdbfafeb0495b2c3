# CONFIG SET outlives a worker's crash: the respawned worker replays the
# CONFIG SETs of its shard (the journal in the shared segment), so it is
# configured as its peers are -- keyspace notifications included; after a
# reload, the parameters the file holds come from the file again.
use strict;
use warnings;
use Test::More;
use Time::HiRes qw(sleep);
use lib 't/lib';
use Kevy;

my $k = Kevy->new(shards => 2, yaml => "limits: {maxclients: 500}\n");

sub worker_of { my $c = shift; my $id = $c->cmd('CLIENT', 'ID'); $id =~ s/^://; return $id % 2 }
sub conn_on {
    my $w = shift;
    for (1 .. 200) { my $c = $k->connect; return $c if worker_of($c) == $w; $c->close }
    die "no connection lands on worker $w";
}
sub get { my ($c, $p) = @_; my $r = $c->cmd('CONFIG', 'GET', $p); return ref $r ? $r->[1] : $r }
sub respawn {
    my $w = shift;
    my $old = $k->workers->{$w};
    kill 'KILL', $old;
    ok(Kevy::wait_until(sub { my $n = $k->workers->{$w}; $n && $n != $old }, 10), "worker $w killed and respawned");
    ok($k->wait_ready(10), '... and ready');
}

my @params = ('notify-keyspace-events', 'maxclients', 'hash-max-listpack-entries', 'list-max-listpack-size');
my $c = $k->connect;
is($c->cmd('CONFIG', 'SET', 'notify-keyspace-events', 'KEA', 'maxclients', 55), '+OK', 'CONFIG SET two parameters');
is($c->cmd('CONFIG', 'SET', 'hash-max-listpack-entries', 7), '+OK', 'and a data-type threshold');
is($c->cmd('CONFIG', 'SET', 'list-max-listpack-size', -3), '+OK', 'and another');
is($c->cmd('CONFIG', 'SET', 'hash-max-listpack-entries', 9), '+OK', 'set again: the last value counts');
my %want = map { ($_ => get(conn_on(0), $_)) } @params;
is($want{maxclients}, '55', 'worker 0 has them');

respawn(1);
my $w1 = conn_on(1);
is(get($w1, $_), $want{$_}, "the respawned worker has $_ = $want{$_}") for @params;
like($k->log_text, qr/replayed 4 CONFIG SET parameter/, 'it logged the replay');

# A key of shard 1 changes: its keyspace event reaches a subscriber on worker 0.
my $key;
for my $i (1 .. 50) { $key = "nk$i"; last if $k->owner_of($key) == 1 }
my $sub = conn_on(0);
$sub->send_raw(Kevy::Conn::encode('SUBSCRIBE', "__keyspace\@0__:$key"));
$sub->read_reply;
$k->connect->cmd('SET', $key, 'v');           # ($c may have died with worker 1)
is_deeply($sub->read_reply, [ 'message', "__keyspace\@0__:$key", 'set' ], 'the respawned shard still notifies');
$sub->close;

# Twice respawned: still there.
respawn(1);
is(get(conn_on(1), 'notify-keyspace-events'), $want{'notify-keyspace-events'}, 'a second respawn keeps them too');

# A reload gives the file's (new) maxclients to every worker, the running
# ones and one respawned later; parameters the file has not stay.
$k->write_conf("limits: {maxclients: 600}\n");
kill 'HUP', $k->{master};
ok(Kevy::wait_until(sub { get(conn_on(0), 'maxclients') eq '600' }, 10), 'reload: worker 0 takes the file\'s maxclients');
respawn(1);
$w1 = conn_on(1);
is(get($w1, 'maxclients'), '600', 'a worker respawned after the reload: the file\'s maxclients');
is(get($w1, 'notify-keyspace-events'), $want{'notify-keyspace-events'}, '... and still the CONFIG SET notify-keyspace-events');
is(get($w1, 'hash-max-listpack-entries'), '9', '... and threshold');

$k->stop('TERM');
done_testing;
