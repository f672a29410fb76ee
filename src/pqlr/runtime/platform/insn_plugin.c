/* insn_plugin.c: QEMU TCG plugin (host .so) counting retired guest instructions for targets
 * without a readable counter (Cortex-M4 under QEMU has no DWT/PMU cycle counter).
 *
 * Every translated block adds its instruction count to a 64-bit total at block entry (an inline
 * op, cheap). At the first instruction of the guest function `pqlr_counter_read` (address given
 * as mark=0x...), a callback logs the number of instructions retired before that instruction:
 * total - (instructions of the block not yet executed, counted from the marker inclusive).
 * The log ("out=FILE": one decimal count per line, in call order) is zipped with the harness's
 * event codes by pqlr.hw.emulate. A block is assumed to run to its end (no faults, no
 * interrupts mid-block), which holds for the harness: it enables no interrupts.
 *
 * Built against QEMU's stable plugin ABI, version 1 (QEMU 7.x); the few declarations it needs are
 * written out below (Debian ships no qemu-plugin.h).
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- QEMU plugin API, version 1 (subset) ---- */
typedef uint64_t qemu_plugin_id_t;
typedef struct qemu_info_t qemu_info_t;
struct qemu_plugin_tb;
struct qemu_plugin_insn;
enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_CB_R_REGS, QEMU_PLUGIN_CB_RW_REGS };
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index, void *userdata);
typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);
void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb *tb, enum qemu_plugin_op op,
                                              void *ptr, uint64_t imm);
void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn *insn, qemu_plugin_vcpu_udata_cb_t cb,
                                            enum qemu_plugin_cb_flags flags, void *userdata);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb, void *userdata);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t idx);
uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *insn);
__attribute__((visibility("default"))) extern int qemu_plugin_version;
__attribute__((visibility("default"))) int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info,
                                                               int argc, char **argv);
/* ---- end of API ---- */

int qemu_plugin_version = 1;

static uint64_t g_total;   /* instructions of all blocks entered so far */
static uint64_t g_mark;    /* guest address of the marker instruction */
static FILE *g_out;

static void on_mark(unsigned int vcpu, void *not_yet_run)
{
    (void)vcpu;
    fprintf(g_out, "%" PRIu64 "\n", g_total - (uint64_t)(uintptr_t)not_yet_run);
}

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    (void)id;
    size_t n = qemu_plugin_tb_n_insns(tb);
    qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &g_total, n);
    for (size_t i = 0; i < n; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        if (qemu_plugin_insn_vaddr(insn) == g_mark)
            qemu_plugin_register_vcpu_insn_exec_cb(insn, on_mark, QEMU_PLUGIN_CB_NO_REGS,
                                                   (void *)(uintptr_t)(n - i));
    }
}

static void on_exit_cb(qemu_plugin_id_t id, void *userdata)
{
    (void)id;
    (void)userdata;
    fprintf(g_out, "total %" PRIu64 "\n", g_total);
    fclose(g_out);
}

int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv)
{
    (void)info;
    const char *out = NULL;
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "mark=", 5) == 0)
            g_mark = strtoull(argv[i] + 5, NULL, 0);
        else if (strncmp(argv[i], "out=", 4) == 0)
            out = argv[i] + 4;
        else {
            fprintf(stderr, "insn_plugin: unknown argument %s\n", argv[i]);
            return -1;
        }
    }
    if (out == NULL || g_mark == 0 || (g_out = fopen(out, "w")) == NULL) {
        fprintf(stderr, "insn_plugin: need mark=ADDRESS and a writable out=FILE\n");
        return -1;
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
    qemu_plugin_register_atexit_cb(id, on_exit_cb, NULL);
    return 0;
}
