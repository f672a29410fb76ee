/* crt0_rv32.S: reset entry for rv32imac on QEMU `virt` (-bios none jumps to 0x80000000).
 * Sets gp/sp, installs a trap handler, zeroes .bss, calls main, exits via semihosting. */
    .section .text.start, "ax"
    .globl _start
_start:
    .option push
    .option norelax
    la gp, __global_pointer$
    .option pop
    la sp, __stack_top
    la t0, pqlr_trap_entry
    csrw mtvec, t0
    la t0, __bss_start
    la t1, __bss_end
1:  bgeu t0, t1, 2f
    sw zero, 0(t0)
    addi t0, t0, 4
    j 1b
2:  call main
    call pqlr_exit

    .balign 4
pqlr_trap_entry:
    csrr a0, mcause
    csrr a1, mepc
    call pqlr_trap
3:  j 3b
