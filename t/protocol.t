# RESP over a real socket: pipelining order, inline commands, protocol
# errors (Redis's exact text, then close), unknown commands, QUIT.
use strict;
use warnings;
use Test::More;
use lib 't/lib';
use Kevy;

my $k = Kevy->new(shards => 2);

my $c = $k->connect;
# 10,000 pipelined commands in one write: replies in order.
my $n = 10000;
$c->send_raw(join '', map { Kevy::Conn::encode('ECHO', "m$_") } 1 .. $n);
my $bad = 0;
for my $i (1 .. $n) { $bad++ if ($c->read_reply // '') ne "m$i" }
is($bad, 0, "$n pipelined replies in order");

$c->send_raw("PING\r\nECHO \"a b\\x41\"\r\n\r\nping 'x y'\n");
is($c->read_reply, '+PONG', 'inline PING');
is($c->read_reply, 'a bA', 'inline quoting');
is($c->read_reply, 'x y', 'inline with LF only, empty line ignored');

is($c->cmd('FOO', 'a', 'b'), "-ERR unknown command 'FOO', with args beginning with: 'a' 'b' ", 'unknown command');
is($c->cmd('ECHO'), "-ERR wrong number of arguments for 'echo' command", 'wrong arity');
is($c->cmd('PING', 'a', 'b'), "-ERR wrong number of arguments for 'ping' command", 'PING arity');
is($c->cmd('QUIT'), '+OK', 'QUIT');
is($c->read_reply, 'EOF', 'closed after QUIT');

my @errors = (
    [ "*1\r\n\$x\r\n",         "-ERR Protocol error: invalid bulk length\r\n" ],
    [ "*1\r\n:1\r\n",          "-ERR Protocol error: expected '\$', got ':'\r\n" ],
    [ "*x\r\n",                "-ERR Protocol error: invalid multibulk length\r\n" ],
    [ "ECHO \"a\r\n",          "-ERR Protocol error: unbalanced quotes in request\r\n" ],
    [ "PING\r\n*1\r\n\$-5\r\n", "+PONG\r\n-ERR Protocol error: invalid bulk length\r\n" ],
);
for my $e (@errors) {
    my $p = $k->connect;
    $p->send_raw($e->[0]);
    (my $what = $e->[0]) =~ s/\r\n/\\r\\n/g;
    is($p->read_all, $e->[1], "protocol error then close: $what");
}
# An inline request over 64 KiB without a newline.
{
    my $p = $k->connect;
    $p->send_raw('a' x (70 * 1024));
    is($p->read_all, "-ERR Protocol error: too big inline request\r\n", 'too big inline request');
}
is($k->cli('PING'), 'PONG', 'server still up');

# A client that sends a big pipeline and never reads does not grow the
# server without bound: it is paused, and served once it reads.
{
    my $p = $k->connect;
    my $big = 'x' x 4096;
    my $cmds = Kevy::Conn::encode('ECHO', $big) x 2000;   # ~8 MB of replies
    $p->send_raw($cmds);
    my $got = 0;
    $got++ while $got < 2000 && ($p->read_reply // '') eq $big;
    is($got, 2000, 'a slow reader gets every reply once it reads');
}

done_testing;
