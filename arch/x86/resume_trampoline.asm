; The last step of resume, run from a copy in a frame that no saved page
; is restored to. It switches to temporary identity page tables (the boot
; kernel's own may be overwritten), copies every staged page into place,
; loads the image's page tables, GDT, TSS, IDT, FPU state and callee-saved
; registers, and returns from the image's snapshot_and_call with the
; address of the resume handoff in rax. Position independent, and it
; touches no memory but its parameter page until the copy is done.
;
; void resume_trampoline(struct resume_parameters *parameters)  (no return)
; Layout of the parameters: pm/resume.c, struct resume_parameters.

bits 64
default rel
section .text

global resume_trampoline
global resume_trampoline_end

%define PARAM_PAGE_TABLES 0
%define PARAM_COPY_LIST 8
%define PARAM_HANDOFF 16
%define PARAM_SCRATCH 32
%define PARAM_CPU 64
%define PAGE_SIZE 4096

%include "arch/x86/image_cpu_state.inc"

; a copy-list page: the address of the next one (0 at the end), the number
; of pairs in this one, then pairs of (source, destination) addresses
%define COPY_NEXT 0
%define COPY_COUNT 8
%define COPY_PAIRS 16

resume_trampoline:
    cli
    cld
    mov r10, rdi                        ; the parameters, for the whole way
    lea rsp, [r10 + PAGE_SIZE]          ; a stack in the parameter page
    mov rax, [r10 + PARAM_PAGE_TABLES]
    mov cr3, rax

    mov r8, [r10 + PARAM_COPY_LIST]
.next_list_page:
    test r8, r8
    jz .copied
    mov r9, [r8 + COPY_COUNT]
    lea r11, [r8 + COPY_PAIRS]
.next_pair:
    test r9, r9
    jz .list_page_done
    mov rsi, [r11]
    mov rdi, [r11 + 8]
    mov ecx, PAGE_SIZE / 8
    rep movsq
    add r11, 16
    dec r9
    jmp .next_pair
.list_page_done:
    mov r8, [r8 + COPY_NEXT]
    jmp .next_list_page

.copied:
    lea r11, [r10 + PARAM_CPU]
    ; the same build wrote the image, so these are the values this CPU
    ; already runs with; they are loaded for completeness
    mov rax, [r11 + CPU_CR4]
    mov cr4, rax
    mov rax, [r11 + CPU_CR3]
    mov cr3, rax
    mov rax, [r11 + CPU_CR0]
    mov cr0, rax
    mov ecx, MSR_EFER
    mov eax, [r11 + CPU_EFER]
    mov edx, [r11 + CPU_EFER + 4]
    wrmsr

    ; GDT, then CS by a far return and the data segments; the selectors are
    ; this kernel's, which are the image's (same build)
    mov ax, [r11 + CPU_GDT_LIMIT]
    mov [r10 + PARAM_SCRATCH], ax
    mov rax, [r11 + CPU_GDT_BASE]
    mov [r10 + PARAM_SCRATCH + 2], rax
    lgdt [r10 + PARAM_SCRATCH]
    xor eax, eax
    mov ax, cs
    push rax
    lea rax, [.reloaded]
    push rax
    o64 retf
.reloaded:
    mov ax, ss
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov fs, ax
    mov gs, ax
    ; the image's TSS descriptor is marked busy (it was loaded before the
    ; snapshot): make it available again, or ltr faults
    xor eax, eax
    str ax
    test ax, ax
    jz .no_tss
    mov rdx, [r11 + CPU_GDT_BASE]
    and byte [rdx + rax + 5], 0xfd
    ltr ax
.no_tss:
    mov ax, [r11 + CPU_IDT_LIMIT]
    mov [r10 + PARAM_SCRATCH], ax
    mov rax, [r11 + CPU_IDT_BASE]
    mov [r10 + PARAM_SCRATCH + 2], rax
    lidt [r10 + PARAM_SCRATCH]
    fxrstor [r11 + CPU_FXSAVE]

    push qword [r11 + CPU_RFLAGS]       ; interrupts stay off: IF was clear
    popfq
    mov rbx, [r11 + CPU_RBX]
    mov rbp, [r11 + CPU_RBP]
    mov r12, [r11 + CPU_R12]
    mov r13, [r11 + CPU_R13]
    mov r14, [r11 + CPU_R14]
    mov r15, [r11 + CPU_R15]
    mov rcx, [r11 + CPU_RIP]
    mov rax, [r10 + PARAM_HANDOFF]      ; snapshot_and_call's second return
    mov rsp, [r11 + CPU_RSP]
    jmp rcx
resume_trampoline_end:

section .note.GNU-stack noalloc noexec nowrite progbits
