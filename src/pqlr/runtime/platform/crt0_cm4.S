/* crt0_cm4.S: vector table and reset handler for Cortex-M4 on QEMU `mps2-an386`.
 * Word 0 is the initial SP, word 1 the reset vector; every fault goes to pqlr_fault. */
    .syntax unified
    .thumb
    .section .vectors, "a"
    .globl __vectors
__vectors:
    .word __stack_top
    .word reset_handler
    .rept 14
    .word fault_handler      /* NMI, HardFault, MemManage, BusFault, UsageFault, ..., SysTick */
    .endr

    .section .text.start, "ax"
    .thumb_func
    .globl reset_handler
reset_handler:
    ldr r0, =__bss_start
    ldr r1, =__bss_end
    movs r2, #0
1:  cmp r0, r1
    bhs 2f
    str r2, [r0], #4
    b 1b
2:  bl main
    bl pqlr_exit

    .thumb_func
fault_handler:
    mrs r0, ipsr
    ldr r1, [sp, #24]        /* stacked PC of the faulting instruction */
    bl pqlr_trap
3:  b 3b
