# torpor: build the EFI kernel and its FAT image, run it, test it.
# `make` builds build/torpor.efi and build/esp.img; `make run` boots it;
# `make test` runs the host unit tests and the QEMU integration tests.

SHELL := /bin/bash
VERSION := 0.1.0
GIT_REVISION := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)

BUILD := build
CC := gcc
NASM := nasm
HOST_CC := gcc
PYTHON := /usr/bin/python3

EFI_INCLUDE := /usr/include/efi
EFI_LIB := /usr/lib
EFI_CRT0 := $(EFI_LIB)/crt0-efi-x86_64.o

WARNINGS := -Wall -Wextra -Werror
KERNEL_CFLAGS := -std=gnu11 -O2 -g $(WARNINGS) \
	-ffreestanding -fno-builtin -mno-red-zone -mgeneral-regs-only \
	-fpic -fvisibility=hidden -fshort-wchar -fno-stack-protector \
	-fno-omit-frame-pointer -maccumulate-outgoing-args -fno-strict-aliasing \
	-DGNU_EFI_USE_MS_ABI -DTORPOR_VERSION='"$(VERSION)"' \
	-DTORPOR_REVISION='"$(GIT_REVISION)"' \
	-I. -I$(EFI_INCLUDE) -I$(EFI_INCLUDE)/x86_64 -MMD -MP
KERNEL_LDFLAGS := -nostdlib -shared --no-undefined -Bsymbolic -znocombreloc -T link.ld \
	-L$(EFI_LIB)

KERNEL_C_SOURCES := $(wildcard boot/*.c init/*.c arch/x86/*.c console/*.c acpi/*.c kernel/*.c mm/*.c \
	pci/*.c pm/*.c virtio/*.c agent/*.c shell/*.c lib/*.c crypto/*.c)
KERNEL_ASM_SOURCES := $(wildcard boot/*.asm arch/x86/*.asm)
KERNEL_OBJECTS := $(KERNEL_C_SOURCES:%.c=$(BUILD)/kernel/%.o) \
	$(KERNEL_ASM_SOURCES:%.asm=$(BUILD)/kernel/%.asm.o)

.PHONY: all deps run test unit-test integration-test bench bench-image bench-migration bench-protection bench-compare soak faults crash clean
all: $(BUILD)/torpor.efi $(BUILD)/esp.img $(BUILD)/hibimg

deps:
	@sh scripts/deps.sh

$(BUILD)/kernel/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(KERNEL_CFLAGS) -c $< -o $@

$(BUILD)/kernel/%.asm.o: %.asm
	@mkdir -p $(dir $@)
	$(NASM) -f elf64 -g -MD $@.d -MP $< -o $@

# Two links: the first finds the symbol addresses, the second embeds them
# as the .ksyms section, which link.ld puts last so no address moves.
$(BUILD)/torpor-nosyms.elf: $(KERNEL_OBJECTS) link.ld
	$(LD) $(KERNEL_LDFLAGS) $(EFI_CRT0) $(KERNEL_OBJECTS) -o $@ -lefi -lgnuefi

$(BUILD)/ksyms.bin: $(BUILD)/torpor-nosyms.elf tools/ksyms.py
	$(PYTHON) tools/ksyms.py $< $@

$(BUILD)/ksyms.o: $(BUILD)/ksyms.bin
	printf 'section .ksyms progbits alloc noexec nowrite align=8\nincbin "%s"\nsection .note.GNU-stack noalloc noexec nowrite progbits\n' $< > $(BUILD)/ksyms.asm
	$(NASM) -f elf64 $(BUILD)/ksyms.asm -o $@

$(BUILD)/torpor.elf: $(BUILD)/torpor-nosyms.elf $(BUILD)/ksyms.o
	$(LD) $(KERNEL_LDFLAGS) $(EFI_CRT0) $(KERNEL_OBJECTS) $(BUILD)/ksyms.o -o $@ -lefi -lgnuefi
	@start=$$(nm $@ | awk '$$3 == "_hot_path_start" { print $$1 }'); \
	end=$$(nm $@ | awk '$$3 == "_hot_path_end" { print $$1 }'); \
	if [ $$(( 0x$$start % 4096 )) -ne 0 ] || [ $$(( 0x$$end - 0x$$start )) -gt 4096 ]; then \
		echo "link: .text.hot_path must start a page and fit in it (start 0x$$start, end 0x$$end)" >&2; \
		rm -f $@; exit 1; fi
	@cmp -s <(nm $(BUILD)/torpor-nosyms.elf | grep -i ' t ' | sort) \
		<(nm $@ | grep -i ' t ' | sort) || \
		{ echo "ksyms: code moved between the two links" >&2; rm -f $@; exit 1; }

$(BUILD)/torpor.efi: $(BUILD)/torpor.elf
	objcopy -j .text -j .sdata -j .data -j .dynamic -j .dynsym -j .rel \
		-j .rela -j .rel.* -j .rela.* -j .reloc -j .ksyms \
		--target efi-app-x86_64 --subsystem=10 $< $@

# Built under a private name and renamed, so a guest never boots half an image.
$(BUILD)/esp.img: $(BUILD)/torpor.efi
	tmp=$@.$$$$.tmp && rm -f $$tmp && \
	mformat -i $$tmp -C -T 16384 -h 16 -s 32 -v TORPOR :: && \
	mmd -i $$tmp ::/EFI ::/EFI/BOOT && \
	mcopy -i $$tmp $< ::/EFI/BOOT/BOOTX64.EFI && \
	mv $$tmp $@

run: deps all
	./run-qemu.sh

# torpor as the libvirt domain `torpor` (docs/libvirt.md); clean-libvirt
# destroys and undefines it and stops the daemons it started
.PHONY: run-libvirt clean-libvirt
run-libvirt: deps all
	scripts/run-libvirt.sh start

clean-libvirt:
	scripts/run-libvirt.sh clean

# ---- host unit tests: the kernel's portable sources with ASan and UBSan ----
HOST_CFLAGS := -std=gnu11 -O1 -g $(WARNINGS) -I. -fsanitize=address,undefined \
	-fno-sanitize-recover=all -fno-omit-frame-pointer -DTORPOR_HOST_TEST
HOST_LIBS := -lcmocka

# the image format's pure code and what it checks with: the hash and the page MAC and cipher
crypto_sources := crypto/page_mac.c crypto/page_cipher.c crypto/nh.c crypto/poly1305.c crypto/chacha20.c
image_sources := pm/image.c lib/hash.c $(crypto_sources)

# hibimg: reads hibernation images on the host (docs/image-format.md), with pm/image.c's checks.
# `hibimg key` and `--vars` read the image key from an OVMF vars file (tools/efi_vars.c, boot/handoff.c).
HIBIMG_SOURCES := tools/hibimg.c tools/hibimg_disk.c tools/efi_vars.c boot/handoff.c $(image_sources)
$(BUILD)/hibimg: $(HIBIMG_SOURCES) $(wildcard tools/*.h pm/*.h crypto/*.h lib/*.h boot/*.h)
	@mkdir -p $(dir $@)
	$(HOST_CC) $(HOST_CFLAGS) $(HIBIMG_SOURCES) -o $@

# modules of several files, as the unit tests and fuzz targets link them
json_sources := agent/json_access.c agent/json_parse.c agent/json_unicode.c agent/json_writer.c
guest_agent_sources := agent/guest_agent.c agent/guest_agent_commands.c agent/guest_agent_dispatch.c \
	$(json_sources)
console_ports_sources := virtio/console_ports_control.c virtio/console_ports_data.c \
	virtio/console_ports_setup.c

UNIT_TESTS := buddy format parse line_edit acpi_parse virtqueue balloon balloon_hint image blk_config blk_request \
	console_ports virtio_pci_layout memory_map \
	json guest_agent hash chacha20 poly1305 page_mac image_key_record efi_vars
unit_sources_buddy := mm/buddy.c
unit_sources_format := lib/format.c
unit_sources_parse := lib/parse.c
unit_sources_line_edit := lib/line_edit.c
unit_sources_acpi_parse := acpi/acpi_parse.c
unit_sources_virtqueue := virtio/virtqueue.c tests/unit/sim_device.c
unit_sources_balloon := virtio/balloon.c
unit_sources_balloon_hint := virtio/balloon_hint.c
unit_sources_image := $(image_sources) mm/memory_map.c
unit_sources_blk_config := virtio/blk_config.c
unit_sources_blk_request := virtio/blk_request.c
unit_sources_console_ports := $(console_ports_sources)
unit_sources_virtio_pci_layout := virtio/virtio_pci_layout.c pci/msix_layout.c
unit_sources_memory_map := mm/memory_map.c
unit_sources_json := $(json_sources)
unit_sources_guest_agent := $(guest_agent_sources)
unit_sources_hash := lib/hash.c
unit_sources_chacha20 := crypto/chacha20.c
unit_sources_poly1305 := crypto/poly1305.c crypto/chacha20.c
unit_sources_image_key_record := boot/handoff.c
unit_sources_efi_vars := tools/efi_vars.c boot/handoff.c
unit_sources_page_mac := $(crypto_sources)

define unit_test_rule
$(BUILD)/host/test_$(1): tests/unit/test_$(1).c $$(unit_sources_$(1)) $$(wildcard */*.h tests/unit/*.h)
	@mkdir -p $$(dir $$@)
	$$(HOST_CC) $$(HOST_CFLAGS) $$< $$(unit_sources_$(1)) -o $$@ $$(HOST_LIBS)
endef
$(foreach t,$(UNIT_TESTS),$(eval $(call unit_test_rule,$(t))))
UNIT_BINARIES := $(UNIT_TESTS:%=$(BUILD)/host/test_%)

# the page MAC's tests once more with NH's second pass (crypto/nh.h,
# NH_PASSES): the one-line change to 2^-128 must keep working
$(BUILD)/host/test_page_mac_two_passes: tests/unit/test_page_mac.c $(crypto_sources) $(wildcard */*.h tests/unit/*.h)
	@mkdir -p $(dir $@)
	$(HOST_CC) $(HOST_CFLAGS) -DNH_PASSES=2 $< $(crypto_sources) -o $@ $(HOST_LIBS)
UNIT_BINARIES += $(BUILD)/host/test_page_mac_two_passes

unit-test: $(UNIT_BINARIES)

test: deps all unit-test
	@$(PYTHON) tests/run_tests.py $(UNIT_BINARIES)

# ---- fuzzing: libFuzzer targets in tests/fuzz (docs/reliability.md, Fuzzing) ----
# `make fuzz` builds build/fuzz/<target> and runs each for FUZZ_SECONDS over
# build/fuzz/corpus/<target>, a writable copy of the seeds in
# tests/fuzz/corpus/<target> (what a run finds stays there for the next run;
# the committed seeds are never written). A crash, sanitizer report or hang
# fails the make and leaves its input in build/fuzz/artifacts/.
FUZZ_CC := clang
FUZZ_CFLAGS := -std=gnu11 -O1 -g $(WARNINGS) -I. -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=all -fno-omit-frame-pointer -DTORPOR_HOST_TEST
FUZZ_SECONDS ?= 60
FUZZ_FLAGS ?=
FUZZ_TARGETS := fuzz_image fuzz_line fuzz_used_ring fuzz_console_ports fuzz_agent fuzz_efi_vars
fuzz_sources_fuzz_image := $(image_sources)
fuzz_sources_fuzz_line := lib/line_edit.c lib/parse.c
fuzz_sources_fuzz_used_ring := virtio/virtqueue.c tests/unit/sim_device.c
fuzz_sources_fuzz_console_ports := $(console_ports_sources)
fuzz_sources_fuzz_agent := $(guest_agent_sources)
fuzz_sources_fuzz_efi_vars := tools/efi_vars.c boot/handoff.c

define fuzz_rule
$(BUILD)/fuzz/$(1): tests/fuzz/$(1).c $$(fuzz_sources_$(1)) $$(wildcard */*.h tests/unit/*.h)
	@mkdir -p $$(dir $$@)
	$$(FUZZ_CC) $$(FUZZ_CFLAGS) $$< $$(fuzz_sources_$(1)) -o $$@
endef
$(foreach t,$(FUZZ_TARGETS),$(eval $(call fuzz_rule,$(t))))

.PHONY: fuzz fuzz-build
fuzz-build: $(FUZZ_TARGETS:%=$(BUILD)/fuzz/%)

fuzz: fuzz-build
	@failed=""; \
	for t in $(FUZZ_TARGETS); do \
		corpus=$(BUILD)/fuzz/corpus/$$t; log=$(BUILD)/fuzz/$$t.log; \
		mkdir -p $$corpus $(BUILD)/fuzz/artifacts && cp tests/fuzz/corpus/$$t/* $$corpus/; \
		echo "fuzz: $$t for $(FUZZ_SECONDS) s (log $$log)"; \
		$(BUILD)/fuzz/$$t -max_total_time=$(FUZZ_SECONDS) -timeout=10 -print_final_stats=1 \
			-artifact_prefix=$(BUILD)/fuzz/artifacts/$$t- $(FUZZ_FLAGS) $$corpus > $$log 2>&1; \
		status=$$?; \
		execs=$$(sed -n 's/^stat::number_of_executed_units: *//p' $$log); \
		rate=$$(sed -n 's/^stat::average_exec_per_sec: *//p' $$log); \
		if [ $$status -eq 0 ]; then \
			echo "fuzz: $$t: ok, $${execs:-?} execs, $${rate:-?}/s, corpus $$(ls $$corpus | wc -l) inputs"; \
		else \
			failed="$$failed $$t"; \
			echo "fuzz: $$t: FAILED (exit $$status) after $${execs:-?} execs"; \
			grep -E '^(==[0-9]+==ERROR|SUMMARY|.*runtime error|fuzz_[a-z_]+: )|Test unit written' $$log | head -n 8; \
		fi; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz: failed:$$failed (inputs in $(BUILD)/fuzz/artifacts/)"; exit 1; fi

# Benchmarks: docs/benchmarks.md and bench/results/*.csv; QUICK=1 for one run of each.
bench: deps all
	QUICK=$(QUICK) $(PYTHON) bench/run_bench.py

# Only the image rows (writer and reader against blk bench and hash bench):
# prints them and writes bench/results/image-*.csv, not docs/benchmarks.md.
bench-image: deps all
	QUICK=$(QUICK) $(PYTHON) bench/run_bench.py --image

# many hibernate/resume cycles with a random mix (tests/soak.py)
CYCLES ?= 50
soak: deps all
	$(PYTHON) tests/soak.py --cycles $(CYCLES) $(if $(SEED),--seed $(SEED))

# the whole fault matrix: 16 fault positions across the image's data
# (make test runs 2), write, flush and read faults (docs/reliability.md)
FAULT_POSITIONS ?= 16
faults: deps all
	TORPOR_FAULT_POSITIONS=$(FAULT_POSITIONS) $(PYTHON) -m pytest -q -n 2 tests/integration/test_reliability.py

# crash states of the hibernation disk, booted twice each: STATES of them
# sampled from a recorded hibernate and resume (docs/reliability.md)
STATES ?= 60
crash: deps all
	$(PYTHON) tests/crash/crash_runner.py --states $(STATES) $(if $(SEED),--seed $(SEED))

# Only the live migration rows (free page hinting on and off), printed and
# in a CSV; make bench writes them into docs/benchmarks.md with the rest.
bench-migration: deps all
	BENCH_ONLY=migration QUICK=$(QUICK) $(PYTHON) bench/run_bench.py

# Only the protection rows (plain, authenticated and encrypted images),
# printed and in a CSV; make bench writes them into docs/benchmarks.md.
bench-protection: deps all
	BENCH_ONLY=protection QUICK=$(QUICK) $(PYTHON) bench/run_bench.py

# make bench-compare OLD.csv NEW.csv: the ratio per figure
bench-compare:
	$(PYTHON) bench/compare.py $(filter %.csv,$(MAKECMDGOALS))

ifeq ($(firstword $(MAKECMDGOALS)),bench-compare)
%.csv:
	@:
endif

clean:
	rm -rf $(BUILD)

-include $(KERNEL_OBJECTS:.o=.d) $(KERNEL_OBJECTS:%=%.d)
