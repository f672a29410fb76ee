/* pqlr_platform.h: what the verify harness needs from a platform (rv32imac, cortex-m4, host).
 *
 * Each platform provides, in its own .c/.S files:
 *   - an instruction counter (pqlr_counter_read; 0 where the emulator counts from outside),
 *   - file I/O (semihosting on the emulated targets, stdio on the host),
 *   - the stack region bounds (linker symbols on the targets).
 * No malloc, no floating point.
 */
#ifndef PQLR_PLATFORM_H
#define PQLR_PLATFORM_H

#include <stdint.h>
#include <stddef.h>

/* Retired-instruction counter. rv32imac: mcycle-independent `instret` CSR (exact under
 * QEMU -icount shift=0). cortex-m4 and host: returns 0; on cortex-m4 the QEMU plugin
 * (insn_plugin.c) logs the exact count each time this function's first instruction executes. */
uint64_t pqlr_counter_read(void);

/* Files, by name relative to the emulator's working directory. Returns a handle >= 0 or -1. */
int pqlr_file_open(const char *name, int for_write);
/* Both return the number of bytes transferred (short count on end of file / error). */
size_t pqlr_file_read(int fd, void *buf, size_t len);
size_t pqlr_file_write(int fd, const void *buf, size_t len);
void pqlr_file_close(int fd);
/* Print a NUL-terminated message on the console (diagnostics only). */
void pqlr_console(const char *msg);
/* Stop the program (and the emulator) with an exit code. */
void pqlr_exit(int code) __attribute__((noreturn));

/* Stack region [bottom, top) the harness paints; NULL on the host (stack not measured). */
uint8_t *pqlr_stack_bottom(void);
uint8_t *pqlr_stack_top(void);

#endif /* PQLR_PLATFORM_H */
