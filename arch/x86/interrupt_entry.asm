; Entry stubs for all 256 vectors. Each pushes a dummy error code where the
; CPU pushes none (Intel SDM vol. 3, 6.13), then the vector number, saves the
; general registers in struct interrupt_frame order and calls
; interrupt_dispatch.

bits 64
default rel
section .text

extern interrupt_dispatch
global interrupt_stub_table

%macro STUB 1
align 16
interrupt_stub_%1:
%if %1 == 8 || (%1 >= 10 && %1 <= 14) || %1 == 17 || %1 == 21 || %1 == 29 || %1 == 30
%else
    push qword 0
%endif
    push qword %1
    jmp interrupt_common
%endmacro

%assign vector 0
%rep 256
STUB vector
%assign vector vector + 1
%endrep

interrupt_common:
    cld
    push rax
    push rbx
    push rcx
    push rdx
    push rsi
    push rdi
    push rbp
    push r8
    push r9
    push r10
    push r11
    push r12
    push r13
    push r14
    push r15
    mov rdi, rsp
    ; keep the C call 16-byte aligned whatever the interrupted stack was
    mov rbx, rsp
    and rsp, -16
    call interrupt_dispatch wrt ..plt
    mov rsp, rbx
    pop r15
    pop r14
    pop r13
    pop r12
    pop r11
    pop r10
    pop r9
    pop r8
    pop rbp
    pop rdi
    pop rsi
    pop rdx
    pop rcx
    pop rbx
    pop rax
    add rsp, 16
    iretq

section .data
align 8
interrupt_stub_table:
%assign vector 0
%rep 256
    dq interrupt_stub_ %+ vector
%assign vector vector + 1
%endrep

section .note.GNU-stack noalloc noexec nowrite progbits
