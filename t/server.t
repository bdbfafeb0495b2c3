# Connection limits, authentication and the server commands across
# workers: requirepass, maxclients, idle timeout, query and output buffer
# limits, CLIENT LIST/KILL over every worker, INFO, CONFIG SET on every
# worker, SHUTDOWN.
use strict;
use warnings;
use Test::More;
use Time::HiRes qw(sleep time);
use lib 't/lib';
use Kevy;

# Connections until both workers hold some (SO_REUSEPORT spreads them);
# ids are n * shards + shard, so id % 2 names the worker.
sub spread {
    my ($k, $n) = @_;
    my @c;
    for (1 .. 40) {
        my $c = $k->connect;
        my $id = substr($c->cmd('CLIENT', 'ID'), 1);
        push @c, [ $c, $id ];
        my %w = map { $_->[1] % 2 => 1 } @c;
        last if @c >= $n && keys %w == 2;
    }
    return @c;
}

subtest 'requirepass' => sub {
    my $k = Kevy->new(shards => 2, yaml => "security: {requirepass: s3cret}\n");
    my $c = $k->connect;
    is($c->cmd('PING'), '-NOAUTH Authentication required.', 'PING before AUTH');
    is($c->cmd('GET', 'k'), '-NOAUTH Authentication required.', 'GET before AUTH');
    like($c->cmd('NOSUCH'), qr/^-ERR unknown command/, 'unknown command comes first');
    like($c->cmd('HELLO', '2'), qr/^-NOAUTH HELLO must be called/, 'HELLO without AUTH');
    is($c->cmd('AUTH', 'wrong'), '-WRONGPASS invalid username-password pair or user is disabled.', 'WRONGPASS');
    is($c->cmd('AUTH', 'nobody', 's3cret'), '-WRONGPASS invalid username-password pair or user is disabled.',
       'WRONGPASS for another user');
    is($c->cmd('AUTH', 's3cret'), '+OK', 'AUTH');
    is($c->cmd('PING'), '+PONG', 'PING after AUTH');
    is($c->cmd('RESET'), '+RESET', 'RESET');
    is($c->cmd('PING'), '-NOAUTH Authentication required.', 'RESET logs out');
    my $h = $c->cmd('HELLO', '2', 'AUTH', 'default', 's3cret', 'SETNAME', 'me');
    is(ref $h && $h->[1], 'redis', 'HELLO AUTH replies the server map');
    is($c->cmd('CLIENT', 'GETNAME'), 'me', 'HELLO SETNAME');
    is($c->cmd('SET', 'k', 'v'), '+OK', 'authenticated commands run (any shard)');
    my $d = $k->connect;
    $d->send_raw("*11\r\n" . ('$1' . "\r\nx\r\n") x 11);
    like($d->read_reply, qr/^-ERR Protocol error: unauthenticated multibulk length/,
         'unauthenticated clients get Redis\'s small request limits');
};

subtest 'maxclients' => sub {
    my $k = Kevy->new(shards => 2, yaml => "limits: {maxclients: 3}\n");
    my @c = map { $k->connect } 1 .. 3;
    is($_->cmd('PING'), '+PONG', 'within the limit') for @c;
    my $x = $k->connect;
    is($x->read_reply, '-ERR max number of clients reached', 'the 4th client is refused');
    is($x->read_reply, 'EOF', 'and closed');
    $c[0]->close;
    ok(Kevy::wait_until(sub { my $y = $k->connect; my $r = $y->cmd('PING'); $r eq '+PONG' }, 5),
       'room again once a client left');
    my $info = $c[1]->cmd('INFO', 'stats');
    like($info, qr/rejected_connections:[1-9]/, 'INFO counts rejected connections');
};

subtest 'idle timeout' => sub {
    my $k = Kevy->new(shards => 2, yaml => "limits: {timeout: 1}\n");
    my $c = $k->connect;
    is($c->cmd('PING'), '+PONG', 'connected');
    my $busy = $k->connect;
    my $t0 = time;
    for (1 .. 10) { $busy->cmd('PING'); sleep 0.3 }
    is($c->read_reply, 'EOF', 'an idle client is closed');
    ok(time - $t0 < 4, 'within about two seconds');
    is($busy->cmd('PING'), '+PONG', 'an active client stays');
};

subtest 'query buffer limit' => sub {
    my $k = Kevy->new(shards => 2, yaml => "limits: {client_query_buffer_limit: 1mb}\n");
    my $c = $k->connect;
    $c->send_raw("*3\r\n\$3\r\nSET\r\n\$1\r\nk\r\n\$3000000\r\n" . ('x' x 1_500_000));
    is($c->read_reply, 'EOF', 'a client whose request outgrows the limit is closed');
    like($k->log_text, qr/max query buffer length/, 'and the log says why');
    is($k->cmd('PING'), '+PONG', 'the server goes on');
};

subtest 'proto_max_bulk_len' => sub {
    my $k = Kevy->new(shards => 1, yaml => "limits: {proto_max_bulk_len: 1mb}\n");
    my $c = $k->connect;
    $c->send_raw("*3\r\n\$3\r\nSET\r\n\$1\r\nk\r\n\$2000000\r\n");
    is($c->read_reply, '-ERR Protocol error: invalid bulk length', 'bulk over the limit');
};

subtest 'output buffer limit' => sub {
    my $k = Kevy->new(shards => 2, yaml => "limits: {output_buffer_limit: 256kb}\n");
    my $c = $k->connect;
    is($c->cmd('SET', 'big', 'x' x 100_000), '+OK', 'a 100 kB value');
    # Never read: the replies pile up past the limit.
    $c->send_raw(Kevy::Conn::encode('GET', 'big') x 200);
    ok(Kevy::wait_until(sub { $k->log_text =~ /output buffer limits/ }, 5), 'closed for its output buffer');
    is($k->cmd('PING'), '+PONG', 'the server goes on');
};

subtest 'CLIENT LIST and KILL across workers' => sub {
    my $k = Kevy->new(shards => 2);
    my @c = spread($k, 4);
    my %w = map { $_->[1] % 2 => 1 } @c;
    is(scalar keys %w, 2, 'clients on both workers') or return;
    my ($me, $myid) = @{ $c[0] };
    is($me->cmd('CLIENT', 'SETNAME', 'lister'), '+OK', 'SETNAME');
    my $list = $me->cmd('CLIENT', 'LIST');
    my @ids = $list =~ /^id=(\d+) /mg;
    is_deeply([ sort { $a <=> $b } @ids ], [ sort { $a <=> $b } map { $_->[1] } @c ], 'every client listed');
    is_deeply(\@ids, [ sort { $a <=> $b } @ids ], 'in id order');
    like($list, qr/^id=$myid addr=127\.0\.0\.1:\d+ laddr=127\.0\.0\.1:$k->{port} fd=\d+ name=lister age=\d+ idle=\d+ flags=N db=0 sub=0 psub=0 ssub=0 multi=-1 qbuf=\d+ qbuf-free=\d+ argv-mem=\d+ multi-mem=0 rbs=\d+ rbp=\d+ obl=\d+ oll=\d+ omem=\d+ tot-mem=\d+ events=r cmd=client\|list user=default redir=-1 resp=2$/m,
         'Redis 7.0 fields');
    my ($victim) = grep { $_->[1] % 2 != $myid % 2 } @c;
    is($me->cmd('CLIENT', 'KILL', 'ID', $victim->[1]), ':1', 'KILL ID of a client on the other worker');
    is($victim->[0]->read_reply, 'EOF', 'that client is closed');
    my ($other) = grep { $_->[1] != $myid && $_->[1] != $victim->[1] } @c;
    my ($addr) = $me->cmd('CLIENT', 'LIST') =~ /^id=$other->[1] addr=(\S+)/m;
    is($me->cmd('CLIENT', 'KILL', $addr), '+OK', 'old form KILL addr');
    is($other->[0]->read_reply, 'EOF', 'that client is closed');
    is($me->cmd('CLIENT', 'KILL', '1.2.3.4:5'), '-ERR No such client', 'old form, no such client');
    is($me->cmd('CLIENT', 'KILL', 'ID', $myid), ':0', 'SKIPME yes by default');
    is($me->cmd('CLIENT', 'KILL', 'ID', $myid, 'SKIPME', 'no'), ':1', 'SKIPME no kills itself');
    is($me->read_reply, 'EOF', 'after its reply');
};

subtest 'INFO across workers' => sub {
    my $k = Kevy->new(shards => 2);
    my @c = spread($k, 4);
    my $c = $c[0][0];
    $c->cmd('SET', "key$_", 'v') for 1 .. 20;
    my $info = $c->cmd('INFO');
    for my $s (qw(Server Clients Memory Persistence Stats Replication CPU Modules Errorstats Cluster Keyspace Shards)) {
        like($info, qr/^# $s\r$/m, "section $s");
    }
    my ($clients) = $info =~ /^connected_clients:(\d+)/m;
    is($clients, scalar @c, 'connected_clients summed over workers');
    like($info, qr/^db0:keys=20,expires=0,avg_ttl=0\r$/m, 'keyspace summed');
    my @shards = $info =~ /^shard(\d+):pid=\d+,clients=\d+,commands=\d+,keys=\d+/mg;
    is_deeply([ sort @shards ], [ 0, 1 ], 'one line per shard');
    like($info, qr/^redis_version:7\.0\.15\r$/m, 'redis_version');
    like($info, qr/^used_memory_human:[\d.]+[BKMG]\r$/m, 'used_memory_human');
    my $only = $c->cmd('INFO', 'keyspace', 'CLIENTS');
    like($only, qr/\A# Clients\r\n.*\r\n\r\n# Keyspace\r\n/s, 'sections chosen by name, in Redis order');
    unlike($only, qr/# Server/, 'and only those');
    is($c->cmd('INFO', 'nosuch'), '', 'unknown section: empty');
};

subtest 'CONFIG SET on every worker' => sub {
    my $k = Kevy->new(shards => 2);
    my @c = spread($k, 2);
    is($c[0][0]->cmd('CONFIG', 'SET', 'maxclients', '1234'), '+OK', 'CONFIG SET');
    is_deeply($_->[0]->cmd('CONFIG', 'GET', 'maxclients'), [ 'maxclients', '1234' ], "seen on worker " . $_->[1] % 2)
        for @c;
    is($c[0][0]->cmd('CONFIG', 'SET', 'requirepass', 'pw'), '+OK', 'requirepass via CONFIG SET');
    my $n = $k->connect;
    is($n->cmd('PING'), '-NOAUTH Authentication required.', 'new clients must AUTH');
    is($c[1][0]->cmd('PING'), '+PONG', 'existing ones stay authenticated');
    is($c[0][0]->cmd('CONFIG', 'SET', 'requirepass', ''), '+OK', 'cleared');
    is($c[0][0]->cmd('CONFIG', 'REWRITE') =~ /^-ERR CONFIG REWRITE is not supported/ ? 1 : 0, 1, 'REWRITE refused');
};

subtest 'reload applies limits' => sub {
    my $k = Kevy->new(shards => 2);
    $k->write_conf("security: {requirepass: fromfile}\nlimits: {maxclients: 77}\n");
    kill 'HUP', $k->{master};
    ok(Kevy::wait_until(sub { my $r = $k->cmd('PING'); $r =~ /NOAUTH/ }, 5), 'requirepass applied on SIGHUP');
    my $c = $k->connect;
    $c->cmd('AUTH', 'fromfile');
    is_deeply($c->cmd('CONFIG', 'GET', 'maxclients'), [ 'maxclients', '77' ], 'maxclients applied');
};

subtest 'SHUTDOWN' => sub {
    my $k = Kevy->new(shards => 2);
    my $c = $k->connect;
    is($c->cmd('SHUTDOWN', 'ABORT'), '-ERR No shutdown in progress.', 'ABORT with nothing to abort');
    $c->send_raw(Kevy::Conn::encode('SHUTDOWN', 'NOSAVE'));
    is($c->read_reply, 'EOF', 'the connection is closed without a reply');
    my $end = time + 10;
    while (time < $end) {
        last if waitpid($k->{master}, POSIX::WNOHANG()) == $k->{master};
        sleep 0.05;
    }
    my $st = $?;
    ok(time < $end, 'the master exited');
    is($st >> 8, 0, 'with status 0');
    delete $k->{master};
};

done_testing;
