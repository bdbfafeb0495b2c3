# Config errors: each kind gives one line "kevy: FILE:LINE:COL: ..." and
# exit 1, with nothing started or written; -t and -o.
use strict;
use warnings;
use Test::More;
use lib 't/lib';
use Kevy;

my $dir = Kevy::tmpdir();

sub run_kevy {
    my (@args) = @_;
    my $cmd = join ' ', map { my $a = $_; $a =~ s/'/'\\''/g; "'$a'" } $Kevy::BIN, @args;
    my $out = `$cmd 2>&1`;
    return ($? >> 8, $out);
}

sub conf_with {
    my ($name, $text) = @_;
    my $f = "$dir/$name.yaml";
    open my $fh, '>', $f or die;
    print $fh "dir: $dir/data-$name\npid_file: $dir/data-$name/kevy.pid\n$text";
    close $fh;
    return $f;
}

my @cases = (
    [ 'unknown key',   "shards: 1\nsharts: 2\n",         qr/:4:1: unknown key "sharts"$/ ],
    [ 'nested unknown', "log:\n  colour: red\n",          qr/:4:3: unknown key "log.colour"$/ ],
    [ 'wrong type',    "daemonize: maybe\n",              qr/:3:12: daemonize: expected true or false, got "maybe"$/ ],
    [ 'not a mapping', "log: 5\n",                        qr/:3:6: "log" must be a mapping of keys$/ ],
    [ 'list for scalar', "shards: [1, 2]\n",              qr/:3:9: shards: expected a single value, not a list$/ ],
    [ 'out of range',  "shards: 1000\n",                  qr/:3:9: shards: expected auto or a whole number from 1 to 128, got "1000"$/ ],
    [ 'ring not pow2', "ring: {size: 5000}\n",            qr/:3:14: ring.size: must be a power of two, got "5000"$/ ],
    [ 'bad duration',  "shutdown_timeout: soon\n",        qr/:3:19: shutdown_timeout: expected a duration/ ],
    [ 'bad enum',      "log: {level: loud}\n",            qr/:3:14: log.level: expected one of debug, verbose, notice, warning, got "loud"$/ ],
    [ 'bad address',   "listen: [127.0.0.1]\n",           qr/:3:10: listen: expected host:port/ ],
    [ 'bad port',      "listen: 127.0.0.1:70000\n",       qr/:3:9: listen: port must be a number from 0 to 65535/ ],
    [ 'duplicate key', "shards: 1\nshards: 2\n",          qr/:4:1: duplicate key "shards" \(first at line 3\)$/ ],
    [ 'bad yaml',      "listen: [127.0.0.1:1\n",          qr/:4:1: YAML syntax error: / ],
    [ 'tab indent',    "log:\n\tfile: x\n",               qr/:4:1: YAML syntax error: / ],
    [ 'cpu list short', "shards: 2\ncpu_affinity: [0]\n", qr/cpu_affinity: lists 1 CPUs for 2 shards$/ ],
    [ 'two documents', "shards: 1\n---\nshards: 2\n",     qr/only one YAML document is allowed$/ ],
);

for my $c (@cases) {
    my ($name, $text, $re) = @$c;
    (my $tag = $name) =~ s/\W/_/g;
    my $f = conf_with($tag, $text);
    my ($rc, $out) = run_kevy('-c', $f);
    is($rc, 1, "$name: exit 1");
    my @lines = split /\n/, $out;
    is(scalar @lines, 1, "$name: one line") or diag $out;
    like($lines[0] // '', qr/^kevy: \Q$f\E/, "$name: names the file");
    like($lines[0] // '', $re, "$name: message") or diag $out;
    ok(!-e "$dir/data-$tag", "$name: nothing written");
}

# An unreadable file.
{
    my ($rc, $out) = run_kevy('-c', "$dir/missing.yaml");
    is($rc, 1, 'missing file: exit 1');
    like($out, qr/^kevy: \Q$dir\E\/missing.yaml:1:1: cannot open the configuration file: No such file or directory\n\z/, 'missing file: message');
    my $f = conf_with('unreadable', "shards: 1\n");
    chmod 0000, $f;
    SKIP: {
        skip 'root reads any file', 2 if -r $f;
        ($rc, $out) = run_kevy('-c', $f);
        is($rc, 1, 'unreadable: exit 1');
        like($out, qr/Permission denied/, 'unreadable: message');
    }
}

# -t
{
    my $f = conf_with('good', "shards: 2\nlog: {level: warning}\n");
    my ($rc, $out) = run_kevy('-t', '-c', $f);
    is($rc, 0, '-t good: exit 0');
    is($out, "kevy: configuration file $f test is successful\n", '-t good: message');
    ok(!-e "$dir/data-good", '-t writes nothing');
    my $bad = conf_with('tbad', "shards: zero\n");
    ($rc, $out) = run_kevy('-t', '-c', $bad);
    is($rc, 1, '-t bad: exit 1');
    like($out, qr/shards: expected auto.*\nkevy: configuration file \Q$bad\E test failed\n\z/s, '-t bad: message');
}

# -o overrides: applied after the file, validated the same way.
{
    my $f = conf_with('ov', "shards: 2\n");
    my ($rc, $out) = run_kevy('-t', '-c', $f, '-o', 'shards=zz');
    is($rc, 1, '-o bad value: exit 1');
    is($out =~ s/\nkevy: configuration.*//sr,
       "kevy: -o shards=zz: shards: expected auto or a whole number from 1 to 128, got \"zz\"", '-o bad value: message');
    ($rc, $out) = run_kevy('-t', '-c', $f, '-o', 'nope.key=1');
    like($out, qr/^kevy: -o nope.key=1: unknown key "nope.key"/, '-o unknown key');
    ($rc, $out) = run_kevy('-t', '-c', $f, '-o', 'shards');
    like($out, qr/^kevy: -o shards: expected -o path.to.key=value/, '-o without =');
    ($rc, $out) = run_kevy('-t', '-c', $f, '-o', 'listen=[127.0.0.1:7000, unix:/tmp/k.sock]', '-o', 'admin.listen=');
    is($rc, 0, '-o list and empty admin: ok') or diag $out;
    ($rc, $out) = run_kevy('-t', '-c', $f, '-o', 'log={level: debug, file: stderr}');
    is($rc, 0, '-o a whole section as a YAML mapping') or diag $out;
    ($rc, $out) = run_kevy('-t', '-c', $f, '-o', 'log={colour: red}');
    like($out, qr/^kevy: -o log=\{colour: red\}: unknown key "log.colour"/, '-o section: unknown key named');
}

# -o really changes what runs: the server listens on the overridden port.
{
    my $k = Kevy->new(shards => 1, no_start => 1);
    my $port = Kevy::free_port();
    $k->start('-o', "listen=127.0.0.1:$port");
    my $c = $k->connect($port);
    is($c->cmd('PING'), '+PONG', '-o listen: serves on the overridden port');
    $c->close;
    is($k->stop('TERM'), 0, 'stopped');
}

# Usage errors.
{
    my ($rc, $out) = run_kevy('-x');
    is($rc, 1, 'unknown option: exit 1');
    like($out, qr/^kevy: invalid option: "-x"/, 'unknown option: message');
    ($rc, $out) = run_kevy('-v');
    like($out, qr/^kevy version \d+\.\d+\.\d+$/, '-v');
    ($rc, $out) = run_kevy('-s', 'explode', '-c', conf_with('sig', ''));
    like($out, qr/invalid option: "-s explode"/, '-s bad signal');
}

done_testing;
