package KevyDiff;
# Helpers for differential tests and benchmarks against the reference
# redis-server: a corpus parser (redis-cli's argument syntax), a raw RESP
# connection that returns each reply's exact bytes, reply comparison
# (byte-exact or as a top-level multiset), and a redis-server started on a
# free port in a temp dir, stopped by pid. Only core Perl modules.

use strict;
use warnings;
use Carp qw(croak);
use IO::Socket::INET;
use POSIX qw(:sys_wait_h);
use Time::HiRes qw(sleep time);
use Kevy;

# ---- corpus syntax --------------------------------------------------------

# Split one line the way redis-cli does (Redis's sdssplitargs): blanks
# separate arguments; "double quotes" know \n \r \t \b \a \xHH and \<c>;
# 'single quotes' know only \'; a closing quote must be followed by a blank
# or the end of the line. Returns an array ref, or undef for unbalanced
# quotes.
sub split_args {
    my ($s) = @_;
    my @args;
    my $n = length $s;
    my $i = 0;
    my $space = qr/[ \t\n\r\x0b\f]/;
    while (1) {
        $i++ while $i < $n && substr($s, $i, 1) =~ $space;
        return \@args if $i >= $n;
        my ($cur, $inq, $insq, $done) = ('', 0, 0, 0);
        while (!$done) {
            my $c = $i < $n ? substr($s, $i, 1) : undef;
            if ($inq) {
                return undef unless defined $c;
                my $nx = $i + 1 < $n ? substr($s, $i + 1, 1) : '';
                if ($c eq '\\' && $nx eq 'x' && substr($s, $i + 2, 2) =~ /^[0-9a-fA-F]{2}$/) {
                    $cur .= chr hex substr($s, $i + 2, 2);
                    $i += 3;
                } elsif ($c eq '\\' && $i + 1 < $n) {
                    my %esc = (n => "\n", r => "\r", t => "\t", b => "\b", a => "\a");
                    $cur .= exists $esc{$nx} ? $esc{$nx} : $nx;
                    $i++;
                } elsif ($c eq '"') {
                    return undef if $i + 1 < $n && substr($s, $i + 1, 1) !~ $space;
                    $done = 1;
                } else {
                    $cur .= $c;
                }
            } elsif ($insq) {
                return undef unless defined $c;
                if ($c eq '\\' && $i + 1 < $n && substr($s, $i + 1, 1) eq "'") {
                    $cur .= "'";
                    $i++;
                } elsif ($c eq "'") {
                    return undef if $i + 1 < $n && substr($s, $i + 1, 1) !~ $space;
                    $done = 1;
                } else {
                    $cur .= $c;
                }
            } else {
                if (!defined $c || $c =~ $space) { $done = 1 }
                elsif ($c eq '"') { $inq = 1 }
                elsif ($c eq "'") { $insq = 1 }
                else { $cur .= $c }
            }
            $i++ if $i < $n;
        }
        push @args, $cur;
    }
}

# Parse a corpus file. Returns { file, pending, items => [...], errors => [...] }
# where each item is { line, text, mode => 'compare'|'unordered'|'nocompare'|'sleep',
# argv => [...], ms }.
sub parse_corpus {
    my ($file) = @_;
    open my $f, '<:raw', $file or croak "$file: $!";
    my @lines = <$f>;
    close $f;
    my $c = { file => $file, pending => 0, items => [], errors => [] };
    $c->{pending} = 1 if @lines && $lines[0] =~ /^#\s*kevy:\s*pending\b/i;
    my $ln = 0;
    for my $l (@lines) {
        $ln++;
        $l =~ s/\r?\n\z//;
        next if $l =~ /^\s*(#|\z)/;
        (my $text = $l) =~ s/^\s+//;
        my $mode = 'compare';
        if ($text =~ s/^!([\w-]+)\s*//) {
            $mode = lc $1;
            if ($mode eq 'sleep') {
                if ($text =~ /^(\d+(?:\.\d+)?)\s*\z/) {
                    push @{ $c->{items} }, { line => $ln, text => $l, mode => 'sleep', ms => $1 };
                } else {
                    push @{ $c->{errors} }, "$file:$ln: bad !sleep (want milliseconds): $l";
                }
                next;
            }
            unless ($mode eq 'unordered' || $mode eq 'unordered-deep' || $mode eq 'nocompare') {
                push @{ $c->{errors} }, "$file:$ln: unknown directive !$mode";
                next;
            }
        }
        my $argv = split_args($text);
        if (!defined $argv) {
            push @{ $c->{errors} }, "$file:$ln: unbalanced quotes: $l";
            next;
        }
        if (!@$argv) {
            push @{ $c->{errors} }, "$file:$ln: directive without a command: $l";
            next;
        }
        push @{ $c->{items} }, { line => $ln, text => $text, mode => $mode, argv => $argv };
    }
    return $c;
}

# ---- replies ----------------------------------------------------------------

# End offset of the complete reply starting at $p in $b, or -1 if the
# buffer holds only part of it. Knows RESP2 and RESP3 types.
sub reply_end {
    my ($b, $p) = @_;
    my $i = index($b, "\r\n", $p);
    return -1 if $i < 0;
    my $t = substr($b, $p, 1);
    my $arg = substr($b, $p + 1, $i - $p - 1);
    my $next = $i + 2;
    if (index('+-:_,#(', $t) >= 0) { return $next }
    if ($t eq '$' || $t eq '!' || $t eq '=') {
        return $next if $arg =~ /^-/ || $arg eq '?';
        croak "bad bulk length '$arg'" unless $arg =~ /^\d+$/;
        my $e = $next + $arg + 2;
        return length($b) >= $e ? $e : -1;
    }
    my $mult = index('*~>', $t) >= 0 ? 1 : index('%|', $t) >= 0 ? 2 : 0;
    croak "bad reply type byte '" . escape($t) . "'" unless $mult;
    return $next if $arg =~ /^-/;
    croak "bad aggregate length '$arg'" unless $arg =~ /^\d+$/;
    my $q = $next;
    for (1 .. $arg * $mult) {
        $q = reply_end($b, $q);
        return -1 if $q < 0;
    }
    $q = reply_end($b, $q) if $t eq '|';      # an attribute precedes the reply
    return $q;
}

# Top-level elements of an aggregate reply, each as its raw bytes; undef
# if the reply is not an array/set (or is a null array).
sub elements {
    my ($raw) = @_;
    return undef unless $raw =~ /^([*~])(\d+)\r\n/;
    my $n = $2;
    my $p = length($1) + length($2) + 2;
    my @e;
    for (1 .. $n) {
        my $e = reply_end($raw, $p);
        return undef if $e < 0;
        push @e, substr($raw, $p, $e - $p);
        $p = $e;
    }
    return \@e;
}

# A reply with every array/set, at every depth, put in a canonical order
# (its elements sorted by their own canonical bytes).
sub canonical_deep {
    my ($raw) = @_;
    my $e = elements($raw) or return $raw;
    my ($head) = $raw =~ /^([^\r]*\r\n)/;
    return $head . join('', sort map { canonical_deep($_) } @$e);
}

# Compare two raw replies; mode 'unordered' compares a top-level array as
# a multiset, 'unordered-deep' every nested array too. Returns true if they
# match.
sub same_reply {
    my ($a, $b, $mode) = @_;
    return 1 if defined $a && defined $b && $a eq $b;
    return 0 unless defined $a && defined $b;
    if (($mode // '') eq 'unordered-deep') {
        return canonical_deep($a) eq canonical_deep($b);
    }
    if (($mode // '') eq 'unordered') {
        my ($ea, $eb) = (elements($a), elements($b));
        return 0 unless $ea && $eb && substr($a, 0, 1) eq substr($b, 0, 1);
        return join("\0\0", sort @$ea) eq join("\0\0", sort @$eb);
    }
    return 0;
}

# Printable form of raw bytes: \r \n \t \\ \" and \xHH, cut at $max.
sub escape {
    my ($s, $max) = @_;
    return '(none)' unless defined $s;
    $max ||= 300;
    my $len = length $s;
    $s = substr($s, 0, $max) if $len > $max;
    $s =~ s/([\\"])/\\$1/g;
    $s =~ s/\r/\\r/g;
    $s =~ s/\n/\\n/g;
    $s =~ s/\t/\\t/g;
    $s =~ s/([^\x20-\x7e])/sprintf('\\x%02x', ord $1)/ge;
    $s .= "...($len bytes)" if $len > $max;
    return qq("$s");
}

# ---- a raw RESP connection --------------------------------------------------

package KevyDiff::Conn;
use Carp qw(croak);
use IO::Socket::INET;
use IO::Select;
use Time::HiRes qw(time);

sub new {
    my ($class, $port, $host) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => $host || '127.0.0.1', PeerPort => $port,
                                  Proto => 'tcp', Timeout => 5) or return undef;
    $s->autoflush(1);
    binmode $s;
    return bless { s => $s, buf => '', port => $port, eof => 0 }, $class;
}

sub send_argv {
    my ($c, @argv) = @_;
    my $out = '*' . scalar(@argv) . "\r\n";
    $out .= '$' . length($_) . "\r\n$_\r\n" for @argv;
    return $c->send_raw($out);
}

sub send_raw {
    my ($c, $bytes) = @_;
    local $SIG{PIPE} = 'IGNORE';
    my $off = 0;
    while ($off < length $bytes) {
        my $w = syswrite($c->{s}, $bytes, length($bytes) - $off, $off);
        return 0 unless defined $w && $w > 0;
        $off += $w;
    }
    return 1;
}

# The exact bytes of the next reply. Returns ('<closed>' marker is the
# caller's business) undef on EOF, dies "timeout" after $timeout seconds.
sub read_raw {
    my ($c, $timeout) = @_;
    my $end = time + ($timeout || 10);
    my $sel = IO::Select->new($c->{s});
    while (1) {
        if (length $c->{buf}) {
            my $e = KevyDiff::reply_end($c->{buf}, 0);
            if ($e >= 0) {
                my $r = substr($c->{buf}, 0, $e);
                substr($c->{buf}, 0, $e) = '';
                return $r;
            }
        }
        return undef if $c->{eof};
        my $left = $end - time;
        die "timeout\n" if $left <= 0;
        next unless $sel->can_read($left);
        my $n = sysread($c->{s}, my $chunk, 65536);
        if (!$n) { $c->{eof} = 1; next }
        $c->{buf} .= $chunk;
    }
}

# Send argv and return the raw reply (undef on EOF).
sub call {
    my ($c, @argv) = @_;
    $c->send_argv(@argv) or return undef;
    return $c->read_raw;
}

sub close { my $c = shift; close $c->{s} if $c->{s}; delete $c->{s} }

# ---- the reference redis-server -------------------------------------------

package KevyDiff::Redis;
use Carp qw(croak);
use POSIX qw(:sys_wait_h);
use Time::HiRes qw(sleep time);

our $BIN = $ENV{REDIS_SERVER} || 'redis-server';

sub available {
    my $bin = $BIN;
    return -x $bin if $bin =~ m{/};
    for my $d (split /:/, $ENV{PATH} || '') { return 1 if -x "$d/$bin" }
    return 0;
}

# KevyDiff::Redis->new(cpu => 0, args => [...]): redis-server on a free
# port, no persistence, in a temp dir. With cpu, run under taskset -c.
sub new {
    my ($class, %o) = @_;
    my $self = bless { port => $o{port} || Kevy::free_port(), dir => $o{dir} || Kevy::tmpdir() }, $class;
    my @cmd = ($BIN, '--port', $self->{port}, '--bind', '127.0.0.1', '--save', '',
               '--appendonly', 'no', '--dir', $self->{dir}, '--daemonize', 'no',
               '--logfile', "$self->{dir}/redis.log", @{ $o{args} || [] });
    unshift @cmd, 'taskset', '-c', $o{cpu} if defined $o{cpu};
    my $pid = fork // croak "fork: $!";
    if ($pid == 0) {
        open STDOUT, '>>', "$self->{dir}/stdout";
        open STDERR, '>>', "$self->{dir}/stderr";
        exec @cmd or POSIX::_exit(127);
    }
    $self->{pid} = $pid;      # taskset execs redis-server: same pid
    my $end = time + 10;
    while (time < $end) {
        if (waitpid($pid, WNOHANG) == $pid) { delete $self->{pid}; last }
        my $c = KevyDiff::Conn->new($self->{port});
        if ($c) {
            my $r = eval { $c->call('PING') };
            $c->close;
            return $self if defined $r && $r eq "+PONG\r\n";
        }
        sleep 0.05;
    }
    $self->stop;
    croak "redis-server did not start: " . do { local $/; open my $f, '<', "$self->{dir}/redis.log"; <$f> // '' };
}

sub port { $_[0]{port} }
sub pid  { $_[0]{pid} }
sub connect { KevyDiff::Conn->new($_[0]{port}) }

sub stop {
    my $self = shift;
    my $pid = delete $self->{pid} or return;
    kill 'TERM', $pid;
    my $end = time + 10;
    while (time < $end) { return if waitpid($pid, WNOHANG) == $pid; sleep 0.05 }
    kill 'KILL', $pid;
    waitpid($pid, 0);
}

sub DESTROY { local ($?, $@); $_[0]->stop }

1;
