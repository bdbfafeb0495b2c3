# Layout reconciliation: a changed shard count or routing is resharded
# before any worker starts, and killing the master (kill -9, through the
# test-only KEVY_TEST_RESHARD_CRASH checkpoints) at any step loses or
# duplicates no key: the next start rolls the reshard forward or discards
# it and redoes it.
use strict;
use warnings;
use Test::More;
use POSIX qw(:sys_wait_h);
use lib 't/lib';
use Kevy;

my $NKEYS = 300;

sub fill {
    my $k = shift;
    my $c = $k->connect;
    $c->send_raw(join '', map { Kevy::Conn::encode('SET', "s:$_", "v$_") } 1 .. $NKEYS);
    $c->read_reply for 1 .. $NKEYS;
    for my $i (1 .. 20) {
        $c->cmd('HSET', "h:$i", 'f', "hv$i", 'g', 'x');
        $c->cmd('RPUSH', "l:$i", 'a', 'b', $i);
        $c->cmd('SADD', "set:$i", 1, 2, "m$i");
        $c->cmd('ZADD', "z:$i", $i, 'one', 2 * $i, 'two');
    }
    $c->cmd('SET', 'ttl', 'v', 'EX', 5000);
    is($c->cmd('SAVE'), '+OK', 'SAVE');
    $c->close;
}

# Every key there exactly once, with its value.
sub check {
    my ($k, $what) = @_;
    my $c = $k->connect;
    is($c->cmd('DBSIZE'), ':' . ($NKEYS + 81), "$what: DBSIZE");
    my $vals = $c->cmd('MGET', map { "s:$_" } 1 .. $NKEYS);
    is(scalar(grep { $vals->[$_ - 1] eq "v$_" } 1 .. $NKEYS), $NKEYS, "$what: string values");
    my $ok = 1;
    for my $i (1 .. 20) {
        $ok &&= ($c->cmd('HGET', "h:$i", 'f') // '') eq "hv$i";
        $ok &&= join(',', @{ $c->cmd('LRANGE', "l:$i", 0, -1) }) eq "a,b,$i";
        $ok &&= $c->cmd('SCARD', "set:$i") eq ':3';
        $ok &&= ($c->cmd('ZSCORE', "z:$i", 'two') // '') eq 2 * $i;
    }
    ok($ok, "$what: hashes, lists, sets, zsets");
    like($c->cmd('TTL', 'ttl'), qr/^:(4\d\d\d|5000)$/, "$what: TTL kept");
    $c->close;
}

sub meta {
    my $k = shift;
    open my $f, '<', "$k->{dir}/data/shards.meta" or return '';
    local $/;
    return <$f>;
}

# A plain reshard 2 -> 3, then a routing change.
{
    my $k = Kevy->new(shards => 2, yaml => "persistence: {aof: {enabled: false}}\n");
    fill($k);
    is($k->stop('TERM'), 0, 'stopped');
    $k->{shards} = 3;
    $k->write_conf("persistence: {aof: {enabled: false}}\n");
    $k->start;
    check($k, '2 -> 3 shards');
    like(meta($k), qr/shards 3\nrouting hash/, 'shards.meta records 3 shards');
    my @pre = glob("$k->{dir}/data/*.premigration.*");
    is(scalar @pre, 2, 'the old files are kept as .premigration');
    like($k->log_text, qr/resharding .* 2 shards \(hash\) -> 3 shards \(hash\)/, 'reshard logged');
    is($k->stop('TERM'), 0, 'stopped');
    $k->write_conf("routing: slots\npersistence: {aof: {enabled: false}}\n");
    $k->start;
    check($k, 'hash -> slots routing');
    like(meta($k), qr/routing slots/, 'shards.meta records the routing');
    $k->stop('TERM');
}

# Killed at each step: the next start finishes or redoes it.
for my $step (1 .. 7) {
    my $k = Kevy->new(shards => 2, yaml => "persistence: {aof: {enabled: false}}\n");
    fill($k);
    $k->stop('TERM');
    $k->{shards} = 3;
    $k->write_conf("persistence: {aof: {enabled: false}}\n");
    my $pid = fork // die;
    if ($pid == 0) {
        $ENV{KEVY_TEST_RESHARD_CRASH} = $step;
        open STDERR, '>>', "$k->{dir}/stderr";
        exec $Kevy::BIN, '-c', $k->{conf} or POSIX::_exit(127);
    }
    my $t0 = time;
    my $got;
    while (time - $t0 < 20) { $got = waitpid($pid, WNOHANG); last if $got == $pid; select(undef, undef, undef, 0.05) }
    if ($got != $pid) { kill 'KILL', $pid; waitpid($pid, 0) }
    ok(WIFSIGNALED($?) && WTERMSIG($?) == 9, "step $step: the master was killed mid-reshard");
    unlink $k->{pid_file};
    $k->start;
    check($k, "after a kill at step $step");
    like(meta($k), qr/shards 3/, "step $step: shards.meta says 3");
    ok(!-e "$k->{dir}/data/reshard.journal", "step $step: the journal is gone");
    ok(!glob("$k->{dir}/data/*.reshard*"), "step $step: no temporary files left");
    $k->stop('TERM');
}

done_testing;
