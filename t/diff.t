# Differential tests: every t/diff/*.txt corpus runs line by line on the
# reference redis-server and on kevy with 1 and with 3 shards; the raw
# reply bytes must be identical. Format: t/diff/README.md.
#
#   prove -I t/lib t/diff.t                       all corpora
#   KEVY_DIFF=string,keys prove -v -I t/lib t/diff.t    only these
#   KEVY_DIFF_SHARDS=1 ...                        only the 1-shard kevy
#   KEVY_DIFF_VERBOSE=1 ...                       every mismatch, not 10
#   KEVY_DIFF_SHOW=1 prove -v ...                 print redis's reply to every line
#   KEVY_DIFF_DIR=/some/dir ...                   corpora from another directory
#   KEVY_DIFF_TIMEOUT=30 ...                      seconds to wait for each reply (10)
use strict;
use warnings;
use Test::More;
use Time::HiRes qw(sleep);
use lib 't/lib';
use Kevy;
use KevyDiff;

plan skip_all => 'redis-server not installed (the reference for differential tests)'
    unless KevyDiff::Redis::available();

my $dir = $ENV{KEVY_DIFF_DIR} || 't/diff';
my @files = sort glob "$dir/*.txt";
if (my $only = $ENV{KEVY_DIFF}) {
    my %want = map { (my $x = $_) =~ s/\.txt\z//; ($x => 1) } split /[,\s]+/, $only;
    @files = grep { m{([^/]+)\.txt\z} && $want{$1} } @files;
}
my @shard_counts = split /[,\s]+/, ($ENV{KEVY_DIFF_SHARDS} || '1,3');
my $max_diag = $ENV{KEVY_DIFF_VERBOSE} ? 1e9 : 10;
my $timeout = $ENV{KEVY_DIFF_TIMEOUT} || 10;

# The runner's own parts, so a broken runner cannot pass a corpus.
subtest 'runner self-check' => sub {
    my @cases = (
        [ q{SET k v},                  [ 'SET', 'k', 'v' ] ],
        [ q{  a   "b c"  'd e' },      [ 'a', 'b c', 'd e' ] ],
        [ q{x "\x41\n\r\t\"\\\q" 'it\'s' ""}, [ 'x', "A\n\r\t\"\\q", "it's", '' ] ],
        [ q{x "\xZZ"},                [ 'x', 'xZZ' ] ],
    );
    is_deeply(KevyDiff::split_args($_->[0]), $_->[1], "split: $_->[0]") for @cases;
    is(KevyDiff::split_args(q{x "open}), undef, 'unbalanced double quote');
    is(KevyDiff::split_args(q{x "a"b}), undef, 'closing quote glued to text');
    is(KevyDiff::split_args(q{x 'a}), undef, 'unbalanced single quote');
    my $arr = "*3\r\n\$1\r\na\r\n*2\r\n:1\r\n\$-1\r\n+b\r\n";
    is(KevyDiff::reply_end($arr, 0), length $arr, 'reply_end: nested array');
    is(KevyDiff::reply_end(substr($arr, 0, -1), 0), -1, 'reply_end: incomplete');
    ok(KevyDiff::same_reply("*2\r\n:1\r\n:2\r\n", "*2\r\n:2\r\n:1\r\n", 'unordered'), 'multiset equal');
    ok(!KevyDiff::same_reply("*2\r\n:1\r\n:1\r\n", "*2\r\n:1\r\n:2\r\n", 'unordered'), 'multiset differs');
    ok(!KevyDiff::same_reply("*2\r\n:1\r\n:2\r\n", "*2\r\n:2\r\n:1\r\n", 'compare'), 'order matters by default');
    ok(!KevyDiff::same_reply("*0\r\n", "*-1\r\n", 'unordered'), 'empty vs null array');
    my ($s1, $s2) = ("*2\r\n\$1\r\n0\r\n*2\r\n\$1\r\na\r\n\$1\r\nb\r\n", "*2\r\n\$1\r\n0\r\n*2\r\n\$1\r\nb\r\n\$1\r\na\r\n");
    ok(!KevyDiff::same_reply($s1, $s2, 'unordered'), 'unordered: nested order matters');
    ok(KevyDiff::same_reply($s1, $s2, 'unordered-deep'), 'unordered-deep: nested multiset');
    ok(!KevyDiff::same_reply($s1, "*2\r\n\$1\r\n0\r\n*2\r\n\$1\r\na\r\n\$1\r\na\r\n", 'unordered-deep'),
       'unordered-deep: counts matter');
};

my $redis = KevyDiff::Redis->new;
# Configured as the reference redis-server is (--save '' --appendonly no).
my $KEVY_YAML = "persistence: {aof: {enabled: false}, snapshot: {save: []}}\n";
my %kevy = map { $_ => Kevy->new(shards => $_, yaml => $KEVY_YAML) } @shard_counts;
my %restarts;

# Bring a server to an empty keyspace: FLUSHALL, or (kevy without FLUSHALL
# yet, or a kevy that died) a fresh kevy.
sub reset_kevy {
    my ($n) = @_;
    my $k = $kevy{$n};
    my $alive = $k->{master} && Kevy::alive($k->{master});
    if ($alive) {
        my $c = KevyDiff::Conn->new($k->{port});
        my $r = $c ? eval { $c->call('FLUSHALL') } : undef;
        $c->close if $c;
        return if defined $r && $r eq "+OK\r\n";
    }
    undef $kevy{$n};      # stops the old one
    $kevy{$n} = Kevy->new(shards => $n, yaml => $KEVY_YAML);
    $restarts{$n}++;
}

sub reset_redis {
    my $c = $redis->connect or BAIL_OUT('redis-server is gone');
    my $r = $c->call('FLUSHALL');
    $c->close;
    BAIL_OUT('FLUSHALL on redis-server: ' . KevyDiff::escape($r)) unless ($r // '') eq "+OK\r\n";
}

# One side of the comparison: a server name, how to connect, a connection.
sub side { my ($name, $port) = @_; return { name => $name, port => $port, conn => undef } }

# Send to every side first, then read every reply (they run in parallel).
sub run_on_all {
    my ($sides, $argv) = @_;
    for my $s (@$sides) {
        next if ($s->{timeouts} // 0) >= 2;
        $s->{conn} ||= KevyDiff::Conn->new($s->{port});
        $s->{sent} = $s->{conn} ? $s->{conn}->send_argv(@$argv) : 0;
    }
    my @r;
    for my $s (@$sides) {
        my $r;
        if (($s->{timeouts} // 0) >= 2) {
            # A hung server would cost the timeout on every line: give up on
            # it for the rest of this file (it is restarted for the next).
            $r = '<not sent: no reply twice in this file>';
        } elsif (!$s->{conn}) {
            $r = '<cannot connect>';
        } elsif (!$s->{sent}) {
            $r = '<write failed: connection closed>';
        } else {
            $r = eval { $s->{conn}->read_raw($timeout) };
            if ($@) {
                $s->{timeouts}++ if $@ =~ /timeout/;
                $r = $@ =~ /timeout/ ? "<no reply within ${timeout}s>" : "<bad reply: $@>";
                $r =~ s/\s+\z/>/ if $r =~ /^<bad/;
            } elsif (!defined $r) {
                $r = '<connection closed>';
            }
        }
        # Any trouble, a closed connection or QUIT: reconnect for the next line.
        if ($r =~ /^</ || lc($argv->[0]) eq 'quit' || ($s->{conn} && $s->{conn}{eof})) {
            $s->{conn}->close if $s->{conn};
            $s->{conn} = undef;
        }
        push @r, $r;
    }
    return @r;
}

sub show_cmd {
    my ($item) = @_;
    my $t = $item->{text};
    return length($t) > 120 ? substr($t, 0, 120) . '...' : $t;
}

for my $file (@files) {
    my $corpus = KevyDiff::parse_corpus($file);
    my @items = @{ $corpus->{items} };
    my $ncmd = grep { $_->{mode} ne 'sleep' } @items;

    reset_redis();
    reset_kevy($_) for @shard_counts;
    my @sides = (side('redis', $redis->port), map { side("kevy-$_", $kevy{$_}{port}) } @shard_counts);

    my %bad = map { $_ => [] } @shard_counts;
    my %unknown = map { $_ => 0 } @shard_counts;
    for my $item (@items) {
        if ($item->{mode} eq 'sleep') { sleep $item->{ms} / 1000; next }
        my ($want, @got) = run_on_all(\@sides, $item->{argv});
        note(sprintf('%s:%d: %s => %s', $file, $item->{line}, show_cmd($item), KevyDiff::escape($want)))
            if $ENV{KEVY_DIFF_SHOW};
        next if $item->{mode} eq 'nocompare';
        for my $i (0 .. $#shard_counts) {
            my $n = $shard_counts[$i];
            next if KevyDiff::same_reply($want, $got[$i], $item->{mode});
            my $unk = $got[$i] =~ /^-ERR unknown command/ && $want !~ /^-ERR unknown command/;
            $unknown{$n}++ if $unk;
            push @{ $bad{$n} }, sprintf("%s:%d: %s%s\n    redis: %s\n    kevy:  %s",
                $file, $item->{line}, show_cmd($item), ($unk ? '   [kevy: unknown command]' : ''),
                KevyDiff::escape($want), KevyDiff::escape($got[$i]));
        }
    }
    $_->{conn} && $_->{conn}->close for @sides;

    for my $n (@shard_counts) {
        my @m = (@{ $corpus->{errors} }, @{ $bad{$n} });
        my $nbad = @{ $bad{$n} };
        my $name = sprintf('%s, kevy %d shard%s: %d/%d commands match%s%s', $file, $n, ($n == 1 ? '' : 's'),
            $ncmd - $nbad, $ncmd, ($unknown{$n} ? ", $unknown{$n} unknown to kevy" : ''),
            (@{ $corpus->{errors} } ? ', ' . @{ $corpus->{errors} } . ' corpus errors' : ''));
        TODO: {
            local $TODO = $corpus->{pending} ? "$file is marked '# kevy: pending'" : undef;
            ok(!@m && $ncmd > 0, $name);
            if (@m) {
                my $more = @m > $max_diag ? "\n... and " . (@m - $max_diag) . ' more' : '';
                diag(join("\n", @m[0 .. ($#m < $max_diag - 1 ? $#m : $max_diag - 1)]) . $more);
            }
            diag("$file: no commands") unless $ncmd;
        }
    }
}

note("kevy restarted (no FLUSHALL yet, or it died): "
     . join(', ', map { "$_ shards: " . ($restarts{$_} // 0) . 'x' } @shard_counts));

done_testing;
