; The hibernation snapshot point. snapshot_and_call saves the CPU state a
; resumed kernel needs (struct image_cpu_state in pm/image_format.h), then
; runs fn(arg) on another stack, so nothing it does changes the stack it
; was called on. It returns what fn returned (0 or negative). A resumed
; image returns from it a second time, through arch/x86/resume_trampoline.asm,
; with a positive value: the address of the resume handoff.
;
; int64_t snapshot_and_call(struct image_cpu_state *state, int (*fn)(void *),
;                           void *arg, void *stack_top)

bits 64
default rel
section .text

global snapshot_and_call

%include "arch/x86/image_cpu_state.inc"

snapshot_and_call:
    mov rax, [rsp]                  ; where a resume returns to: our caller
    mov [rdi + CPU_RIP], rax
    lea rax, [rsp + 8]
    mov [rdi + CPU_RSP], rax
    mov [rdi + CPU_RBX], rbx
    mov [rdi + CPU_RBP], rbp
    mov [rdi + CPU_R12], r12
    mov [rdi + CPU_R13], r13
    mov [rdi + CPU_R14], r14
    mov [rdi + CPU_R15], r15
    pushfq
    pop qword [rdi + CPU_RFLAGS]
    mov rax, cr0
    mov [rdi + CPU_CR0], rax
    mov rax, cr3
    mov [rdi + CPU_CR3], rax
    mov rax, cr4
    mov [rdi + CPU_CR4], rax
    mov r8, rdx                     ; rdmsr takes rdx
    mov r9, rcx
    mov ecx, MSR_EFER
    rdmsr
    shl rdx, 32
    or rax, rdx
    mov [rdi + CPU_EFER], rax
    sub rsp, 16
    sgdt [rsp]
    mov ax, [rsp]
    mov [rdi + CPU_GDT_LIMIT], ax
    mov rax, [rsp + 2]
    mov [rdi + CPU_GDT_BASE], rax
    sidt [rsp]
    mov ax, [rsp]
    mov [rdi + CPU_IDT_LIMIT], ax
    mov rax, [rsp + 2]
    mov [rdi + CPU_IDT_BASE], rax
    add rsp, 16
    fxsave [rdi + CPU_FXSAVE]

    ; run fn(arg) on the other stack; rbx and r12 are callee-saved, so
    ; they survive the call and are put back from the state afterwards
    mov rbx, rsp
    mov r12, rdi
    mov rsp, r9
    mov rdi, r8
    call rsi
    movsxd rax, eax                 ; fn's int, as the 64-bit result
    mov rsp, rbx
    mov rbx, [r12 + CPU_RBX]
    mov r12, [r12 + CPU_R12]
    ret

section .note.GNU-stack noalloc noexec nowrite progbits
