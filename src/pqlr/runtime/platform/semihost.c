/* semihost.c: pqlr_platform.h for the emulated targets via Arm/RISC-V semihosting.
 *
 * Semihosting: the program traps (`bkpt 0xab` on Thumb, the `slli/ebreak/srai` sequence on RISC-V)
 * with an operation number in r0/a0 and a pointer to a word-sized argument block in r1/a1;
 * QEMU (-semihosting-config enable=on,target=native) performs it on the host and puts the result
 * in r0/a0. Operations used (Arm "Semihosting for AArch32 and AArch64", v2.0):
 *   SYS_OPEN 0x01 {name, mode, len}   SYS_CLOSE 0x02 {fd}   SYS_WRITE0 0x04 (string)
 *   SYS_WRITE 0x05 {fd, buf, len} -> bytes NOT written   SYS_READ 0x06 {fd, buf, len} -> bytes NOT read
 *   SYS_EXIT_EXTENDED 0x20 {reason, code}
 */
#include "pqlr_platform.h"

#define SYS_OPEN 0x01
#define SYS_CLOSE 0x02
#define SYS_WRITE0 0x04
#define SYS_WRITE 0x05
#define SYS_READ 0x06
#define SYS_EXIT_EXTENDED 0x20
#define ADP_STOPPED_APPLICATION_EXIT 0x20026

static uintptr_t semihost_call(uintptr_t op, uintptr_t arg)
{
#if defined(__riscv)
    register uintptr_t a0 __asm__("a0") = op;
    register uintptr_t a1 __asm__("a1") = arg;
    /* The three instructions must be uncompressed and adjacent (RISC-V semihosting spec). */
    __asm__ volatile(
        ".balign 16\n"
        ".option push\n"
        ".option norvc\n"
        "slli x0, x0, 0x1f\n"
        "ebreak\n"
        "srai x0, x0, 7\n"
        ".option pop\n"
        : "+r"(a0)
        : "r"(a1)
        : "memory");
    return a0;
#elif defined(__arm__)
    register uintptr_t r0 __asm__("r0") = op;
    register uintptr_t r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
#else
#error "semihost.c: unsupported architecture (rv32imac or cortex-m4 expected)"
#endif
}

static size_t cstrlen(const char *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    return n;
}

int pqlr_file_open(const char *name, int for_write)
{
    uintptr_t block[3] = {(uintptr_t)name, for_write ? 5u /* "wb" */ : 1u /* "rb" */, cstrlen(name)};
    return (int)semihost_call(SYS_OPEN, (uintptr_t)block);
}

size_t pqlr_file_read(int fd, void *buf, size_t len)
{
    uintptr_t block[3] = {(uintptr_t)fd, (uintptr_t)buf, len};
    return len - semihost_call(SYS_READ, (uintptr_t)block);
}

size_t pqlr_file_write(int fd, const void *buf, size_t len)
{
    uintptr_t block[3] = {(uintptr_t)fd, (uintptr_t)buf, len};
    return len - semihost_call(SYS_WRITE, (uintptr_t)block);
}

void pqlr_file_close(int fd)
{
    uintptr_t block[1] = {(uintptr_t)fd};
    semihost_call(SYS_CLOSE, (uintptr_t)block);
}

void pqlr_console(const char *msg)
{
    semihost_call(SYS_WRITE0, (uintptr_t)msg);
}

void pqlr_exit(int code)
{
    uintptr_t block[2] = {ADP_STOPPED_APPLICATION_EXIT, (uintptr_t)code};
    semihost_call(SYS_EXIT_EXTENDED, (uintptr_t)block);
    for (;;) {
    }
}

extern uint8_t __stack_bottom[], __stack_top[]; /* from the linker script */

uint8_t *pqlr_stack_bottom(void) { return __stack_bottom; }
uint8_t *pqlr_stack_top(void) { return __stack_top; }

__attribute__((noinline)) uint64_t pqlr_counter_read(void)
{
#if defined(__riscv)
    uint32_t hi, lo, hi2;
    do {
        __asm__ volatile("csrr %0, instreth" : "=r"(hi));
        __asm__ volatile("csrr %0, instret" : "=r"(lo));
        __asm__ volatile("csrr %0, instreth" : "=r"(hi2));
    } while (hi != hi2);
    return ((uint64_t)hi << 32) | lo;
#else
    /* Cortex-M4 under QEMU has no cycle counter: insn_plugin.c logs the count at this
     * function's entry. The asm keeps the compiler from merging or removing calls. */
    __asm__ volatile("" ::: "memory");
    return 0;
#endif
}
