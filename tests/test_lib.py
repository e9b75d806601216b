from lib.env import env_auto_int
from lib.machine import cpu_flags, describe


def test_a_benchmark_names_the_cpu_and_the_instruction_sets_embedding_chooses_by(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(
        "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Platinum 8481C\n"
        "flags\t\t: fpu sse avx2 avx512f avx512_vnni avx512_bf16 amx_bf16 amx_tile amx_int8\n\n"
        "processor\t: 1\nmodel name\t: Intel(R) Xeon(R) Platinum 8481C\nflags\t\t: fpu\n"
    )
    machine = describe(cpuinfo)
    assert machine["cpu"] == "Intel(R) Xeon(R) Platinum 8481C"
    assert machine["flags"] == ["amx_bf16", "amx_tile", "avx512_bf16", "avx512_vnni", "avx512f", "avx2"]
    assert machine["cores"] >= 1


def test_a_machine_without_cpuinfo_is_still_described(tmp_path):
    assert describe(tmp_path / "missing") == {"cpu": "unknown", "cores": describe()["cores"], "flags": []}


def test_a_number_fixes_a_setting_that_auto_leaves_to_the_code(monkeypatch):
    for value, expected in (("auto", 0), ("AUTO ", 0), ("", 0), ("400", 400), ("0", 0)):
        monkeypatch.setenv("ASTRADUP_TEST_SETTING", value)
        assert env_auto_int("ASTRADUP_TEST_SETTING") == expected
    monkeypatch.delenv("ASTRADUP_TEST_SETTING")
    assert env_auto_int("ASTRADUP_TEST_SETTING") == 0


def test_the_cpu_flags_come_from_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse avx2 bmi2\n\n")
    assert cpu_flags(cpuinfo) == {"fpu", "sse", "avx2", "bmi2"}
    assert cpu_flags(tmp_path / "missing") == set()
