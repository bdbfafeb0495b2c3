/*
 * kevy [-c FILE] [-o key=value]... [-t] [-s stop|quit|reload|reopen] [-v] [-h]
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/conf.h"
#include "core/master.h"
#include "core/process.h"
#include "core/version.h"
#include "persist/snapshot.h"
#include "kv_auto_config.h"

#define DEFAULT_CONF KV_PREFIX "/etc/kevy/kevy.yaml"
#define MAX_OVERRIDES 64

static void usage(FILE *out)
{
    fprintf(out,
        "Usage: kevy [-c FILE] [-o key=value]... [-t] [-s signal] [-v] [-h]\n"
        "\n"
        "Options:\n"
        "  -c FILE       configuration file (default " DEFAULT_CONF ")\n"
        "  -o KEY=VALUE  override a configuration key, e.g. -o listen=127.0.0.1:7000\n"
        "                or -o log.level=debug (repeatable)\n"
        "  -t            test the configuration and exit\n"
        "  -s SIGNAL     send a signal to the running master: stop, quit, reload, reopen\n"
        "  -v            show the version and exit\n"
        "  -h            show this help and exit\n"
        "  --import-rdb FILE [--force]\n"
        "                split a Redis dump.rdb over the shards' snapshots in dir and exit\n");
}

static int send_signal(const kv_conf_t *conf, const char *name)
{
    static const struct { const char *name; int sig; } sigs[] = {
        { "stop", SIGTERM }, { "quit", SIGQUIT }, { "reload", SIGHUP }, { "reopen", SIGUSR1 },
    };
    char err[PATH_MAX + 128];
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
        if (strcmp(name, sigs[i].name) != 0) continue;
        pid_t pid = kv_pidfile_read(conf->pid_file, err, sizeof(err));
        if (pid < 0) {
            fprintf(stderr, "kevy: %s\n", err);
            return 1;
        }
        if (kill(pid, sigs[i].sig) != 0) {
            fprintf(stderr, "kevy: kill(%d, %s) failed: %s\n", (int) pid, name, strerror(errno));
            return 1;
        }
        return 0;
    }
    fprintf(stderr, "kevy: invalid option: \"-s %s\" (expected stop, quit, reload or reopen)\n", name);
    return 1;
}

int main(int argc, char **argv)
{
    const char *file = DEFAULT_CONF, *sig = NULL;
    kv_conf_override_t ov[MAX_OVERRIDES];
    int nov = 0, test = 0, opt;
    char err[2048];

    /* --import-rdb FILE [--force] (long options, taken out before getopt;
     * an import sets no process titles). */
    const char *import_rdb = NULL;
    int force = 0, nargs = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--import-rdb")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "kevy: option \"--import-rdb\" requires an argument\n");
                return 1;
            }
            import_rdb = argv[++i];
        } else if (!strncmp(argv[i], "--import-rdb=", 13)) {
            import_rdb = argv[i] + 13;
        } else if (!strcmp(argv[i], "--force")) {
            force = 1;
        } else {
            argv[nargs++] = argv[i];
        }
    }
    if (force && !import_rdb) {
        fprintf(stderr, "kevy: \"--force\" goes with \"--import-rdb FILE\"\n");
        return 1;
    }
    argc = nargs;
    argv[argc] = NULL;
    if (!import_rdb) kv_proctitle_init(argc, argv);

    opterr = 0;
    while ((opt = getopt(argc, argv, ":c:o:ts:vh")) != -1) {
        switch (opt) {
        case 'c': file = optarg; break;
        case 'o':
            if (nov == MAX_OVERRIDES) {
                fprintf(stderr, "kevy: too many -o options (at most %d)\n", MAX_OVERRIDES);
                return 1;
            }
            ov[nov++].text = optarg;
            break;
        case 't': test = 1; break;
        case 's': sig = optarg; break;
        case 'v': printf("kevy version %s\n", KV_VERSION); return 0;
        case 'h': usage(stdout); return 0;
        case ':':
            fprintf(stderr, "kevy: option \"-%c\" requires an argument\n", optopt);
            return 1;
        default:
            fprintf(stderr, "kevy: invalid option: \"-%c\"\n", optopt);
            usage(stderr);
            return 1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "kevy: unexpected argument \"%s\"\n", argv[optind]);
        return 1;
    }

    kv_conf_t *conf = calloc(1, sizeof(*conf));
    if (!conf) return 1;
    if (kv_conf_load(conf, file, ov, nov, err, sizeof(err)) != 0) {
        fprintf(stderr, "kevy: %s\n", err);
        if (test) fprintf(stderr, "kevy: configuration file %s test failed\n", file);
        /* As nginx: a broken file is reported here and no signal is sent,
         * so the running kevy keeps its configuration. */
        if (sig) fprintf(stderr, "kevy: signal not sent: fix the configuration first\n");
        return 1;
    }
    if (test) {
        fprintf(stderr, "kevy: configuration file %s test is successful\n", file);
        return 0;
    }
    if (sig) return send_signal(conf, sig);
    if (import_rdb) {
        int rc = kv_snapshot_import(conf, import_rdb, force, err, sizeof(err));
        if (rc != 0) fprintf(stderr, "kevy: import failed: %s\n", err);
        free(conf);
        return rc != 0;
    }
    return kv_master_run(conf, file, ov, nov);
}
