package Kevy;
# Test harness: start the real objs/kevy with a temporary config on free
# ports in a temp dir, talk to it over sockets, and stop every process it
# started, by pid. Only core Perl modules.

use strict;
use warnings;
use Carp qw(croak);
use Cwd qw(abs_path);
use File::Temp qw(tempdir);
use IO::Socket::INET;
use IO::Socket::UNIX;
use POSIX qw(:sys_wait_h);
use Time::HiRes qw(sleep time);

# A server that closes a client mid-request (limits, protocol errors) must
# show up as EOF on the next read, not kill the test with SIGPIPE.
$SIG{PIPE} = 'IGNORE';

our $BIN = $ENV{KEVY_BIN} || 'objs/kevy';
$BIN = abs_path($BIN) if -e $BIN;

# A port nobody listens on now. Ports are taken from a per-process range
# so parallel test files do not race for the same one, and below the
# kernel's ephemeral range (ip_local_port_range, 32768 up on Debian), so an
# outgoing connection of another test cannot take the port between this
# check and the server's bind.
my ($PORT_LO, $PORT_HI) = (10000, 32000);
{
    open my $f, '<', '/proc/sys/net/ipv4/ip_local_port_range';
    my ($lo) = split ' ', (defined $f ? <$f> // '' : '');
    $PORT_HI = $lo - 1 if $lo && $lo > $PORT_LO + 5000 && $lo - 1 < $PORT_HI;
}
my $next_port = $PORT_LO + ($$ * 37) % ($PORT_HI - $PORT_LO);
sub free_port {
    for (1 .. 200) {
        my $p = $next_port++;
        $next_port = $PORT_LO if $next_port > $PORT_HI;
        my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $p,
                                      Proto => 'tcp', Listen => 1, ReuseAddr => 0) or next;
        close $s;
        return $p;
    }
    croak "no free port";
}

sub tmpdir { tempdir('kevy-t-XXXXXX', TMPDIR => 1, CLEANUP => 1) }

# Kevy->new(shards => 2, yaml => "extra: lines\n", args => [...], wait => 1)
sub new {
    my ($class, %o) = @_;
    my $self = bless {
        dir        => $o{dir} || tmpdir(),
        own_ports  => !$o{port} && !$o{admin_port},
        port       => $o{port} || free_port(),
        admin_port => $o{admin_port} || free_port(),
        shards     => $o{shards} // 2,
        pids       => [],
    }, $class;
    my $d = $self->{dir};
    $self->{conf} = "$d/kevy.yaml";
    $self->{log} = "$d/kevy.log";
    $self->{pid_file} = "$d/kevy.pid";
    $self->write_conf($o{yaml} // '');
    $self->start(@{ $o{args} || [] }) unless $o{no_start};
    return $self;
}

sub conf_text {
    my ($self, $extra) = @_;
    my $d = $self->{dir};
    return "listen: [127.0.0.1:$self->{port}]\n"
         . "shards: $self->{shards}\n"
         . "dir: $d/data\n"
         . "pid_file: $self->{pid_file}\n"
         . "log: {file: $self->{log}, level: " . ($self->{log_level} || "verbose") . "}\n"
         . "admin: {listen: 127.0.0.1:$self->{admin_port}}\n"
         . "shutdown_timeout: " . ($self->{shutdown_timeout} || "5s") . "\n"
         . ($extra // '');
}

sub write_conf {
    my ($self, $extra) = @_;
    open my $f, '>', $self->{conf} or croak "$self->{conf}: $!";
    print $f $self->conf_text($extra);
    close $f;
}

sub start {
    my ($self, @args) = @_;
    my $pid = fork // croak "fork: $!";
    if ($pid == 0) {
        open STDOUT, '>>', "$self->{dir}/stdout";
        open STDERR, '>>', "$self->{dir}/stderr";
        exec $BIN, '-c', $self->{conf}, @args or POSIX::_exit(127);
    }
    $self->{master} = $pid;
    return $self if $self->wait_ready;
    # Another process may have bound a port the harness picked between the
    # check and the bind: pick fresh ones and try again.
    my $err = $self->stderr_text;
    if ($self->{own_ports} && $err =~ /address already in use/ && ($self->{port_retries} // 0) < 3) {
        $self->{port_retries}++;
        waitpid($pid, 0);
        truncate "$self->{dir}/stderr", 0;
        my %new = ($self->{port} => free_port(), $self->{admin_port} => free_port());
        my $text = do { local $/; open my $f, '<', $self->{conf} or croak "$self->{conf}: $!"; <$f> };
        $text =~ s{127\.0\.0\.1:(\d+)}{'127.0.0.1:' . ($new{$1} // $1)}ge;
        open my $f, '>', $self->{conf} or croak "$self->{conf}: $!";
        print $f $text;
        close $f;
        ($self->{port}, $self->{admin_port}) = @new{ $self->{port}, $self->{admin_port} };
        return $self->start(@args);
    }
    croak "kevy did not become ready: $err" . $self->log_text;
}

sub stderr_text { my $s = shift; local $/; open my $f, '<', "$s->{dir}/stderr" or return ''; <$f> }
sub log_text    { my $s = shift; local $/; open my $f, '<', $s->{log} or return ''; <$f> }

# Ready = every shard answers: /healthz says 200.
sub wait_ready {
    my ($self, $timeout) = @_;
    my $end = time + ($timeout || 10);
    while (time < $end) {
        return 0 if waitpid($self->{master}, WNOHANG) == $self->{master};
        my ($code) = $self->http('GET', '/healthz');
        return 1 if defined $code && $code == 200;
        sleep 0.05;
    }
    return 0;
}

sub wait_until {
    my ($cond, $timeout) = @_;
    my $end = time + ($timeout || 10);
    while (time < $end) { return 1 if $cond->(); sleep 0.05 }
    return 0;
}

# ---- admin HTTP ---------------------------------------------------------

sub http_raw {
    my ($self, $request) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $self->{admin_port},
                                  Proto => 'tcp', Timeout => 5) or return;
    $s->autoflush(1);
    print $s $request;
    my $resp = '';
    local $SIG{ALRM} = sub { die "timeout\n" };
    alarm 5;
    eval { while (sysread($s, my $buf, 65536)) { $resp .= $buf } };
    alarm 0;
    close $s;
    return $resp;
}

sub http {
    my ($self, $method, $path) = @_;
    my $r = $self->http_raw("$method $path HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    return unless defined $r && $r =~ m{^HTTP/1\.[01] (\d+)};
    my $code = $1;
    my ($head, $body) = split /\r\n\r\n/, $r, 2;
    return ($code, $body // '', $head);
}

# ---- RESP client ----------------------------------------------------------

sub connect {
    my ($self, $port) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port || $self->{port},
                                  Proto => 'tcp', Timeout => 5) or croak "connect: $!";
    $s->autoflush(1);
    return bless { s => $s, buf => '' }, 'Kevy::Conn';
}

sub cmd {
    my ($self, @args) = @_;
    my $c = $self->connect;
    my $r = $c->cmd(@args);
    $c->close;
    return $r;
}

sub cli {
    my ($self, @args) = @_;
    my $out = `redis-cli -p $self->{port} @args 2>&1`;
    chomp $out;
    return $out;
}

# ---- shards --------------------------------------------------------------

# Commands processed per shard, from /metrics ({shard => count}).
sub shard_counts {
    my $self = shift;
    my (undef, $m) = $self->http('GET', '/metrics');
    my %c;
    $c{$1} = $2 while ($m // '') =~ /^kevy_shard_commands_processed_total\{shard="(\d+)"\} (\d+)$/mg;
    return \%c;
}

# The shard that runs commands on $key: send it 50 EXISTS and see whose
# counter moves (counters are published every 100 ms: let them settle).
sub owner_of {
    my ($self, $key) = @_;
    my $c = $self->connect;
    sleep 0.25;
    my $before = $self->shard_counts;
    $c->cmd('EXISTS', $key) for 1 .. 50;
    my $owner;
    wait_until(sub {
        my $after = $self->shard_counts;
        my @moved = grep { $after->{$_} - ($before->{$_} // 0) >= 50 } keys %$after;
        $owner = $moved[0] if @moved == 1;
        defined $owner;
    }, 3);
    $c->close;
    return $owner;
}

# ---- processes ----------------------------------------------------------------

# Worker pids by shard id, read from /proc (children of the master titled
# "kevy: worker N").
sub workers {
    my $self = shift;
    my %w;
    opendir my $d, '/proc' or return {};
    for my $p (grep { /^\d+$/ } readdir $d) {
        open my $st, '<', "/proc/$p/stat" or next;
        my $stat = <$st> // next;
        close $st;
        $stat =~ /\) \S+ (\d+)/ or next;
        next unless $1 == $self->{master};
        open my $cl, '<', "/proc/$p/cmdline" or next;
        my $cmd = <$cl> // '';
        $w{$1} = $p if $cmd =~ /^kevy: worker (\d+)/;
    }
    return \%w;
}

sub alive { my $pid = shift; return kill(0, $pid) && _not_zombie($pid) }
sub _not_zombie {
    my $pid = shift;
    open my $st, '<', "/proc/$pid/stat" or return 0;
    my $s = <$st>;
    return $s !~ /\) Z /;
}

# Send a signal to the master; wait for it to exit; return its exit status
# (or undef on timeout).
sub stop {
    my ($self, $sig, $timeout) = @_;
    return $self->{status} unless $self->{master};
    my %workers = %{ $self->workers };
    kill $sig || 'TERM', $self->{master};
    my $end = time + ($timeout || 15);
    while (time < $end) {
        if (waitpid($self->{master}, WNOHANG) == $self->{master}) {
            $self->{status} = $?;
            delete $self->{master};
            $self->{gone_workers} = [ values %workers ];
            return $self->{status};
        }
        sleep 0.05;
    }
    return undef;
}

sub kill_all {
    my $self = shift;
    return unless $self->{master};
    my $w = $self->workers;
    kill 'KILL', values %$w;
    kill 'KILL', $self->{master};
    waitpid($self->{master}, 0);
    delete $self->{master};
}

sub DESTROY {
    my $self = shift;
    local ($?, $@);
    if ($self->{master}) {
        my $w = $self->workers;
        $self->stop('TERM', 10) // $self->kill_all;
        kill 'KILL', grep { _not_zombie($_) } values %$w;
    }
}

package Kevy::Conn;
use Carp qw(croak);

sub send_raw { my ($c, $bytes) = @_; my $s = $c->{s}; print $s $bytes }

sub encode {
    my @args = @_;
    my $out = '*' . scalar(@args) . "\r\n";
    $out .= '$' . length($_) . "\r\n$_\r\n" for @args;
    return $out;
}

sub cmd { my ($c, @args) = @_; $c->send_raw(encode(@args)); return $c->read_reply }

sub _fill {
    my $c = shift;
    local $SIG{ALRM} = sub { die "read timeout\n" };
    alarm 5;
    my $n = sysread($c->{s}, my $buf, 65536);
    alarm 0;
    return 0 unless $n;
    $c->{buf} .= $buf;
    return 1;
}

sub _line {
    my $c = shift;
    while ((my $i = index($c->{buf}, "\r\n")) < 0) { _fill($c) or return }
    my $i = index($c->{buf}, "\r\n");
    my $line = substr($c->{buf}, 0, $i);
    substr($c->{buf}, 0, $i + 2) = '';
    return $line;
}

# Returns a reply as: "+OK" / "-ERR x" / ":1" strings, bulk as plain string,
# undef for nil, array ref for arrays. Returns the string "EOF" on close.
sub read_reply {
    my $c = shift;
    my $line = _line($c);
    return 'EOF' unless defined $line;
    my $t = substr($line, 0, 1);
    return $line if $t eq '+' || $t eq '-' || $t eq ':';
    if ($t eq '$') {
        my $n = substr($line, 1);
        return undef if $n < 0;
        while (length($c->{buf}) < $n + 2) { _fill($c) or return 'EOF' }
        my $v = substr($c->{buf}, 0, $n);
        substr($c->{buf}, 0, $n + 2) = '';
        return $v;
    }
    if ($t eq '*') {
        my $n = substr($line, 1);
        return undef if $n < 0;
        return [ map { $c->read_reply } 1 .. $n ];
    }
    croak "bad reply line: $line";
}

# Everything the server sends until it closes (for protocol-error tests).
sub read_all {
    my $c = shift;
    while (_fill($c)) { }
    my $b = $c->{buf};
    $c->{buf} = '';
    return $b;
}

sub close { my $c = shift; close $c->{s} }

1;
