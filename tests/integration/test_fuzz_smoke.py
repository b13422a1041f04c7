"""A few seconds of each libFuzzer target in tests/fuzz (no QEMU), so the
targets keep building and running: each is built with `make
build/fuzz/<target>` and run for 3 s over a temporary copy of its committed
seed corpus (tests/fuzz/corpus/<target>). It must exit 0 (no crash,
sanitizer report or broken property) after executing inputs. Skipped only
when clang cannot build a libFuzzer binary (scripts/deps.sh installs clang
and libclang-rt-dev)."""

import os
import re
import shutil
import subprocess

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TARGETS = ("fuzz_image", "fuzz_line", "fuzz_used_ring", "fuzz_console_ports", "fuzz_agent", "fuzz_efi_vars")
SECONDS = 3


@pytest.fixture(scope="module")
def libfuzzer(tmp_path_factory):
    """Skips unless clang links a trivial target with -fsanitize=fuzzer,address,undefined."""
    clang = shutil.which("clang")
    if not clang:
        pytest.skip("clang is not installed (scripts/deps.sh: clang, libclang-rt-dev)")
    work = tmp_path_factory.mktemp("libfuzzer-probe")
    source = work / "probe.c"
    source.write_text("#include <stddef.h>\n#include <stdint.h>\n"
                      "int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)"
                      " { (void)d; (void)n; return 0; }\n")
    probe = subprocess.run([clang, "-fsanitize=fuzzer,address,undefined", str(source),
                            "-o", str(work / "probe")], capture_output=True, text=True, timeout=120)
    if probe.returncode != 0:
        pytest.skip("clang has no libFuzzer runtime (scripts/deps.sh: libclang-rt-dev): "
                    + probe.stderr.strip()[-300:])
    return clang


def executions(output):
    """The run count libFuzzer reports: `Done N runs`, else the last `#N` status line."""
    done = re.findall(r"^Done (\d+) runs", output, re.M)
    if done:
        return int(done[-1])
    status = re.findall(r"^#(\d+)\s", output, re.M)
    return int(status[-1]) if status else 0


@pytest.mark.parametrize("target", TARGETS)
def test_fuzz_target_runs(libfuzzer, target, tmp_path):
    seeds = os.path.join(REPO, "tests", "fuzz", "corpus", target)
    assert len(os.listdir(seeds)) >= 3, "the committed seed corpus of %s is missing" % target
    before = sorted(os.listdir(seeds))

    build = subprocess.run(["make", "-C", REPO, "--no-print-directory", "build/fuzz/" + target],
                           capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stdout + build.stderr
    binary = os.path.join(REPO, "build", "fuzz", target)
    assert os.access(binary, os.X_OK), binary

    corpus = tmp_path / "corpus"
    shutil.copytree(seeds, corpus)
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    run = subprocess.run([binary, "-max_total_time=%d" % SECONDS, "-timeout=10",
                          "-print_final_stats=1", "-artifact_prefix=%s/" % artifacts, str(corpus)],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    output = run.stdout + run.stderr
    assert run.returncode == 0, "%s exited %d; artifacts %s\n%s" % (
        target, run.returncode, os.listdir(artifacts), output[-4000:])
    runs = executions(output)
    assert runs > len(before), "%s executed only %d inputs:\n%s" % (target, runs, output[-2000:])
    assert not os.listdir(artifacts), os.listdir(artifacts)
    assert sorted(os.listdir(seeds)) == before, "the committed corpus was modified"
