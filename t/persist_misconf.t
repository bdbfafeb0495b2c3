# stop-writes-on-bgsave-error, on a real full disk: a 2 MB tmpfs as dir,
# save points on, the AOF off. When the background save fails, writes (and
# PING) get Redis's -MISCONF while reads work; when space returns, the
# cron's retry succeeds and writes are accepted again.
use strict;
use warnings;
use Test::More;
use lib 't/lib';
use Kevy;

SKIP: {
    skip 'needs root to mount a tmpfs', 7 if $> != 0;
    my $dir = Kevy::tmpdir();
    my $mnt = "$dir/disk";
    mkdir $mnt or die;
    skip 'cannot mount a tmpfs', 7 if system("mount -t tmpfs -o size=2m tmpfs $mnt 2>/dev/null") != 0;
    my $k = Kevy->new(shards => 1, dir => $dir, no_start => 1);
    $k->write_conf("persistence: {aof: {enabled: false}, snapshot: {save: [\"1 1\"]}}\n");
    # dir is on the tmpfs: the snapshot cannot fit once the data is > 2 MB
    my $conf = $k->conf_text("persistence: {aof: {enabled: false}, snapshot: {save: [\"1 1\"]}}\n");
    $conf =~ s{^dir: .*$}{dir: $mnt}m;
    open my $f, '>', $k->{conf} or die;
    print $f $conf;
    close $f;
    $k->start;
    my $c = $k->connect;
    # random bytes: LZF cannot shrink them below the 2 MB of the disk
    my @v = map { join '', map { chr(int rand 256) } 1 .. 1000 } 1 .. 4000;
    my $v = $v[6];
    $c->send_raw(join '', map { Kevy::Conn::encode('SET', "big$_", $v[$_ - 1]) } 1 .. 4000);
    $c->read_reply for 1 .. 4000;
    my $r;
    ok(Kevy::wait_until(sub { $r = $c->cmd('SET', 'probe', 1); $r =~ /^-MISCONF/ }, 15),
       'a failed background save refuses writes');
    like($r, qr/^-MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk\./,
         "Redis's error text");
    like($c->cmd('PING'), qr/^-MISCONF/, 'PING too, as Redis');
    is($c->cmd('GET', 'big7'), $v, 'reads keep working');
    like($c->cmd('INFO', 'persistence'), qr/rdb_last_bgsave_status:err/, 'INFO says the last bgsave failed');
    system("mount -o remount,size=64m $mnt");
    ok(Kevy::wait_until(sub { $c->cmd('SET', 'probe', 1) eq '+OK' }, 30), 'space returns: writes accepted again');
    $c->close;
    is($k->stop('TERM'), 0, 'stopped');
    system("umount $mnt");
}

done_testing;
