/* Unit tests for the AOF (persist/aof): what is logged for commands whose
 * replay would not be deterministic, RESP encoding, replaying a file with
 * a torn tail (cut off) and with corruption in the middle (an error naming
 * file and offset), and the keyspace writer round trip. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <fcntl.h>
#include <cmocka.h>

#include "persist/aof.h"
#include "shard/cmd.h"
#include "shard/db.h"
#include "shard/forward.h"

/* ---- helpers ---------------------------------------------------------- */

/* The command table's parts are weak references (cmd.c): name the ones
 * the tests use so the archive members are linked in. */
extern const kv_cmd_t kv_string_cmds[], kv_expire_cmds[], kv_hash_cmds[], kv_list_cmds[], kv_set_cmds[],
    kv_zset_cmds[], kv_dump_cmds[], kv_internal_cmds[], kv_keys_cmds[];
const kv_cmd_t *const used_parts[] = { kv_string_cmds, kv_expire_cmds, kv_hash_cmds, kv_list_cmds, kv_set_cmds,
                                       kv_zset_cmds, kv_dump_cmds, kv_internal_cmds, kv_keys_cmds };

static kv_server_t srv;
static kv_conf_t conf;

void kv_rdb_hash_register(void), kv_rdb_set_register(void), kv_rdb_zset_register(void), kv_list_rdb_register(void);

static kv_db_t *fresh_db(void)
{
    static int init;
    if (!init) {
        /* constructors of archive members are not linked by themselves */
        kv_rdb_hash_register(), kv_rdb_set_register(), kv_rdb_zset_register(), kv_list_rdb_register();
        kv_cmd_init();
        init = 1;
    }
    kv_db_t *db = kv_db_new();
    srv.conf = &conf, srv.db = db;
    return db;
}

/* Run one command (space-separated words) on db; the reply is dropped. */
static void run(kv_db_t *db, const char *line)
{
    char buf[512];
    kv_resp_arg argv[16];
    int argc = 0;
    snprintf(buf, sizeof buf, "%s", line);
    for (char *t = strtok(buf, " "); t && argc < 16; t = strtok(NULL, " ")) argv[argc++] = (kv_resp_arg){ t, strlen(t) };
    kv_client_t c;
    memset(&c, 0, sizeof c);
    c.srv = &srv, c.db = db, c.argc = argc, c.argv = argv;
    kv_reply_buf_init(&c.out);
    const kv_cmd_t *cmd = kv_cmd_lookup_any(argv[0].ptr, argv[0].len);
    assert_non_null(cmd);
    cmd->proc(&c);
    kv_reply_buf_free(&c.out);
}

/* What is logged, as "W W W|W W" (commands separated by '|'). */
static char logged[1024];
static void collect(void *ud, int argc, const kv_resp_arg *argv)
{
    (void) ud;
    size_t n = strlen(logged);
    if (n) logged[n++] = '|';
    for (int i = 0; i < argc; i++)
        n += (size_t) snprintf(logged + n, sizeof logged - n, "%s%.*s", i ? " " : "", (int) argv[i].len, argv[i].ptr);
}

static const char *translate(kv_db_t *db, const char *line)
{
    char buf[512];
    kv_resp_arg argv[16];
    int argc = 0;
    run(db, line);
    snprintf(buf, sizeof buf, "%s", line);
    for (char *t = strtok(buf, " "); t && argc < 16; t = strtok(NULL, " ")) argv[argc++] = (kv_resp_arg){ t, strlen(t) };
    logged[0] = 0;
    kv_aof_translate(db, argc, argv, collect, NULL);
    return logged;
}

static long long ttl_of(kv_db_t *db, const char *k)
{
    kv_dict_entry *e = kv_dict_find(db->dict, k, strlen(k));
    return e ? kv_db_expire_get(kv_db_obj(e)) : -2;
}

/* ---- rules ------------------------------------------------------------- */

static void test_rules_expiry(void **state)
{
    (void) state;
    kv_db_t *db = fresh_db();
    char want[256];
    run(db, "SET k v");
    translate(db, "EXPIRE k 100");
    snprintf(want, sizeof want, "PEXPIREAT k %lld", ttl_of(db, "k"));
    assert_string_equal(logged, want);
    long long t = ttl_of(db, "k");
    assert_true(t > kv_db_now_ms() + 99000 && t <= kv_db_now_ms() + 100000);

    translate(db, "PEXPIRE k 5000");
    snprintf(want, sizeof want, "PEXPIREAT k %lld", ttl_of(db, "k"));
    assert_string_equal(logged, want);

    assert_string_equal(translate(db, "EXPIRE k -1"), "DEL k");    /* past: deleted */

    translate(db, "SET s v EX 100 GET");
    snprintf(want, sizeof want, "SET s v PXAT %lld", ttl_of(db, "s"));
    assert_string_equal(logged, want);
    translate(db, "SETEX x 10 val");
    snprintf(want, sizeof want, "SET x val PXAT %lld", ttl_of(db, "x"));
    assert_string_equal(logged, want);
    translate(db, "PSETEX y 10000 val");
    snprintf(want, sizeof want, "SET y val PXAT %lld", ttl_of(db, "y"));
    assert_string_equal(logged, want);
    assert_string_equal(translate(db, "SET z v PXAT 99999999999999"), "SET z v PXAT 99999999999999");
    assert_string_equal(translate(db, "SET plain v"), "SET plain v");

    translate(db, "GETEX s PX 20000");
    snprintf(want, sizeof want, "PEXPIREAT s %lld", ttl_of(db, "s"));
    assert_string_equal(logged, want);
    assert_string_equal(translate(db, "GETEX s PERSIST"), "PERSIST s");
    assert_string_equal(translate(db, "GETEX s EXAT 1"), "DEL s");
    kv_db_free(db);
}

static void test_rules_values(void **state)
{
    (void) state;
    kv_db_t *db = fresh_db();
    assert_string_equal(translate(db, "INCRBYFLOAT f 1.5"), "SET f 1.5 KEEPTTL");
    assert_string_equal(translate(db, "INCRBYFLOAT f 0.25"), "SET f 1.75 KEEPTTL");
    assert_string_equal(translate(db, "HINCRBYFLOAT h a 2.5"), "HSET h a 2.5");
    assert_string_equal(translate(db, "HINCRBYFLOAT h a 1"), "HSET h a 3.5");
    assert_string_equal(translate(db, "RPUSH l a b"), "RPUSH l a b");
    assert_string_equal(translate(db, "kevy.export l 1"), "DEL l");
    kv_db_free(db);
}

static int nprop;
static char props[1024];
static void prop(kv_db_t *db, int argc, const kv_resp_arg *argv)
{
    (void) db;
    size_t n = strlen(props);
    if (n) props[n++] = '|';
    for (int i = 0; i < argc; i++)
        n += (size_t) snprintf(props + n, sizeof props - n, "%s%.*s", i ? " " : "", (int) argv[i].len, argv[i].ptr);
    nprop++;
}

/* SPOP logs its picks as SREM from the handler (kv_fwd_propagate_as). */
static void test_rules_spop(void **state)
{
    (void) state;
    kv_db_t *db = fresh_db();
    kv_fwd_set_propagate(prop);
    run(db, "SADD s a b c d");
    props[0] = 0, nprop = 0;
    run(db, "SPOP s 2");
    assert_int_equal(nprop, 2);
    assert_true(!strncmp(props, "SREM s ", 7));
    props[0] = 0, nprop = 0;
    run(db, "SPOP s 10");
    assert_string_equal(props, "DEL s");
    kv_fwd_set_propagate(NULL);
    kv_db_free(db);
}

static void test_encoding(void **state)
{
    (void) state;
    kv_aof_buf b = { 0 };
    kv_resp_arg v[3] = { { "SET", 3 }, { "k", 1 }, { "", 0 } };
    kv_aof_buf_cmd(&b, 3, v);
    assert_int_equal(b.len, strlen("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n"));
    assert_memory_equal(b.p, "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n", b.len);
    kv_aof_buf_free(&b);
}

/* ---- replay -------------------------------------------------------------- */

static char path[256];

static void write_file(const char *bytes, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(bytes, 1, n, f), n);
    fclose(f);
}

static off_t file_size(void)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_size;
}

#define GOOD "*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\n1\r\n*3\r\n$5\r\nRPUSH\r\n$1\r\nl\r\n$1\r\nx\r\n"

static void test_replay_good(void **state)
{
    (void) state;
    kv_db_t *db = fresh_db();
    char err[512] = "";
    write_file(GOOD, strlen(GOOD));
    assert_int_equal(kv_aof_replay_file(db, path, 1, err, sizeof err), 0);
    assert_int_equal(kv_db_size(db), 2);
    assert_int_equal(file_size(), (off_t) strlen(GOOD));
    kv_db_free(db);
}

static void test_replay_torn_tail(void **state)
{
    (void) state;
    const char *torn[] = { "*3\r\n$3\r\nSET\r\n$1\r\nb\r\n$5\r\n12", "*3\r\n$3\r\nSE", "*", "\0\0\0\0" };
    for (size_t i = 0; i < sizeof torn / sizeof *torn; i++) {
        kv_db_t *db = fresh_db();
        char err[512] = "", buf[256];
        size_t tl = i == 3 ? 4 : strlen(torn[i]);
        memcpy(buf, GOOD, strlen(GOOD));
        memcpy(buf + strlen(GOOD), torn[i], tl);
        write_file(buf, strlen(GOOD) + tl);
        /* without fixing: an error naming the offset */
        assert_int_equal(kv_aof_replay_file(db, path, 0, err, sizeof err), -1);
        char off[32];
        snprintf(off, sizeof off, "offset %zu", strlen(GOOD));
        assert_non_null(strstr(err, off));
        kv_db_free(db);
        /* fixing: loaded, and the file cut at the last good command */
        db = fresh_db();
        assert_int_equal(kv_aof_replay_file(db, path, 1, err, sizeof err), 0);
        assert_int_equal(kv_db_size(db), 2);
        assert_int_equal(file_size(), (off_t) strlen(GOOD));
        kv_db_free(db);
    }
}

/* MULTI ... EXEC runs whole; a file ending inside one is cut back to its
 * MULTI; nested MULTI / lone EXEC are corruption. */
#define TX "*1\r\n$5\r\nMULTI\r\n*3\r\n$3\r\nSET\r\n$1\r\nb\r\n$1\r\n2\r\n*3\r\n$3\r\nSET\r\n$1\r\nc\r\n$1\r\n3\r\n"
#define EXEC "*1\r\n$4\r\nEXEC\r\n"

static void test_replay_transaction(void **state)
{
    (void) state;
    char err[512] = "", buf[512];
    kv_db_t *db = fresh_db();
    snprintf(buf, sizeof buf, "%s%s%s", GOOD, TX, EXEC);
    write_file(buf, strlen(buf));
    assert_int_equal(kv_aof_replay_file(db, path, 1, err, sizeof err), 0);
    assert_int_equal(kv_db_size(db), 4);
    kv_db_free(db);
    /* torn inside the transaction, at every byte: none of it, file cut */
    size_t whole = strlen(GOOD) + strlen(TX) + strlen(EXEC);
    for (size_t cut = strlen(GOOD) + 1; cut < whole; cut++) {
        db = fresh_db();
        write_file(buf, cut);
        assert_int_equal(kv_aof_replay_file(db, path, 0, err, sizeof err), -1);
        kv_db_free(db);
        db = fresh_db();
        assert_int_equal(kv_aof_replay_file(db, path, 1, err, sizeof err), 0);
        assert_int_equal(kv_db_size(db), 2);
        assert_int_equal(file_size(), (off_t) strlen(GOOD));
        kv_db_free(db);
    }
    const char *bad[] = { GOOD TX TX EXEC, GOOD EXEC };
    for (size_t i = 0; i < 2; i++) {
        db = fresh_db();
        write_file(bad[i], strlen(bad[i]));
        assert_int_equal(kv_aof_replay_file(db, path, 1, err, sizeof err), -1);
        assert_non_null(strstr(err, i == 0 ? "nested MULTI" : "EXEC without MULTI"));
        kv_db_free(db);
    }
}

static void test_replay_corrupt_middle(void **state)
{
    (void) state;
    const char *bad[] = {
        "*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\nGARBAGE\r\n*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\n1\r\n",
        "*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*3\r\n$3\r\nSET\r\n$x\r\na\r\n$1\r\n1\r\n*1\r\n$4\r\nPING\r\n",
        "*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*2\r\n$7\r\nNOSUCHX\r\n$1\r\na\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        kv_db_t *db = fresh_db();
        char err[512] = "";
        write_file(bad[i], strlen(bad[i]));
        assert_int_equal(kv_aof_replay_file(db, path, 1, err, sizeof err), -1);
        assert_non_null(strstr(err, path));
        assert_non_null(strstr(err, "offset 23"));
        assert_int_equal(file_size(), (off_t) strlen(bad[i]));    /* untouched */
        kv_db_free(db);
    }
}

/* The keyspace writer and the replay agree, TTLs included. */
static void test_keyspace_round_trip(void **state)
{
    (void) state;
    kv_db_t *db = fresh_db();
    run(db, "SET s hello");
    run(db, "SET n 12345");
    run(db, "SET t v PX 100000");
    run(db, "RPUSH l a b c");
    run(db, "HSET h f v g w");
    run(db, "SADD set 1 2 x");
    run(db, "ZADD z 1 a 2.5 b");
    run(db, "PEXPIRE l 200000");
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(kv_aof_write_keyspace(db, fd), 0);
    close(fd);
    kv_db_t *db2 = fresh_db();
    char err[512] = "";
    int rrc = kv_aof_replay_file(db2, path, 0, err, sizeof err);
    if (rrc) fprintf(stderr, "%s\n", err);
    assert_int_equal(rrc, 0);
    assert_int_equal(kv_db_size(db2), kv_db_size(db));
    assert_int_equal(ttl_of(db2, "t"), ttl_of(db, "t"));
    assert_int_equal(ttl_of(db2, "l"), ttl_of(db, "l"));
    assert_int_equal(ttl_of(db2, "s"), -1);
    kv_dict_entry *e = kv_dict_find(db2->dict, "z", 1);
    assert_non_null(e);
    assert_int_equal(kv_db_obj(e)->type, KV_TYPE_ZSET);
    kv_db_free(db);
    kv_db_free(db2);
}

int main(void)
{
    snprintf(path, sizeof path, "/tmp/kv-test-aof-%d.aof", (int) getpid());
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rules_expiry),
        cmocka_unit_test(test_rules_values),
        cmocka_unit_test(test_rules_spop),
        cmocka_unit_test(test_encoding),
        cmocka_unit_test(test_replay_good),
        cmocka_unit_test(test_replay_torn_tail),
        cmocka_unit_test(test_replay_corrupt_middle),
        cmocka_unit_test(test_replay_transaction),
        cmocka_unit_test(test_keyspace_round_trip),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    unlink(path);
    return rc;
}
