"""Latency, energy and average power of one model on one hardware profile.

latency: measured instruction counts x cycles_per_instruction / clock when given (an in-order
RV32IMAC / Cortex-M4 core retires ~1 instruction per cycle; the profile's figure says so), else
the analytic model: cycles_per_mac x MACs / clock, or MACs / macs_per_s for accelerators.
Weight tiles streamed from flash add tile_bytes / flash_read_bytes_per_s (not overlapped with
compute: conservative).
energy per inference: active power (current x voltage) x latency. The breakdown into arithmetic
and memory access (pJ) uses the profile's energy table (Horowitz 45 nm by default): each MAC one
multiply + one accumulate; every weight byte read once and every activation byte written once and
read once, from an SRAM of the profile's size.
average power at `rate_hz` inferences per second: active for latency x rate of each second,
asleep (sleep current) for the rest. For NPU profiles, also the second article's comparison:
weights resident in on-chip SRAM (weight-stationary) vs streamed from DRAM every inference.
"""
from __future__ import annotations

from ..errors import PqlrError
from .energy import dram_read_pj, mac_pj, sram_read_pj, sram_tier
from .profiles import Profile, load_profile


def _check_count(name: str, value, allow_zero: bool = True) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or (value == 0 and not allow_zero):
        raise PqlrError(f"{name} must be a {'non-negative' if allow_zero else 'positive'} number, got {value!r}")


def _latency(p: Profile, macs: float, instructions, instructions_source) -> tuple[float, str, str]:
    """(compute seconds, latency_source, how) for one inference."""
    if instructions is not None:
        _check_count("instructions", instructions, allow_zero=False)
        clock = p.require("clock_hz", "turning instruction counts into time")
        cpi = p.require("cycles_per_instruction", "turning instruction counts into time")
        how = f"{instructions:,} instructions x {cpi:g} cycles/instruction / {clock / 1e6:g} MHz"
        return instructions * cpi / clock, f"measured:{instructions_source or 'unknown'}", how
    if p.value("cycles_per_mac") is not None:
        clock = p.require("clock_hz", "the analytic cost model")
        cpm = p.value("cycles_per_mac")
        return cpm * macs / clock, "analytic", f"{macs:,} MACs x {cpm:g} cycles/MAC / {clock / 1e6:g} MHz"
    if p.value("macs_per_s") is not None:
        rate = p.value("macs_per_s")
        return macs / rate, "analytic", f"{macs:,} MACs / {rate:g} MAC/s peak (a lower bound)"
    how = (f"measure the model on the {p.verify_target} emulator (pqlr verify) and pass instructions"
           if p.verify_target else "no emulator runs this ISA: pass instructions measured elsewhere")
    raise PqlrError(f"profile {p.name}: cycles_per_mac and macs_per_s are both unknown; {how}")


def _memory_capacity(p: Profile, weight_bytes: float, activation_bytes: float) -> int:
    """SRAM size the reads come from: the profile's SRAM, or (unknown) the working set."""
    sram = p.value("sram_bytes")
    return int(sram) if sram is not None else int(weight_bytes + activation_bytes)


def estimate(profile: Profile | str, *, macs: int, weight_bytes: int, activation_bytes: int,
             instructions: int | None = None, instructions_source: str | None = None,
             tile_bytes_streamed: int = 0, rate_hz: float = 1.0, budget_mw: float | None = None,
             accuracy: float | None = None, mac_dtype: str = "int8") -> dict:
    """Estimate one inference of a model on `profile` (a Profile or a profile name/path).

    Returns a JSON-ready dict; figures the profile does not know are None, and `notes` says why.
    """
    p = profile if isinstance(profile, Profile) else load_profile(profile)
    for name, v in (("macs", macs), ("weight_bytes", weight_bytes), ("activation_bytes", activation_bytes),
                    ("tile_bytes_streamed", tile_bytes_streamed)):
        _check_count(name, v)
    _check_count("rate_hz", rate_hz, allow_zero=False)
    if budget_mw is not None:
        _check_count("budget_mw", budget_mw, allow_zero=False)
    if accuracy is not None and not 0 <= accuracy <= 1:
        raise PqlrError(f"accuracy must be a fraction in [0, 1], got {accuracy!r}")
    notes = []
    compute_s, source, how = _latency(p, macs, instructions, instructions_source)
    flash_s = 0.0
    if tile_bytes_streamed:
        flash_s = tile_bytes_streamed / p.require("flash_read_bytes_per_s", "streaming weight tiles")
    latency = compute_s + flash_s

    capacity = _memory_capacity(p, weight_bytes, activation_bytes)
    table = p.energy_pj
    arith_pj = macs * mac_pj(table, mac_dtype)
    mem_pj = sram_read_pj(table, weight_bytes + 2 * activation_bytes, capacity)

    current, volts, sleep = (p.value(k) for k in ("active_current_ma", "voltage_v", "sleep_current_ua"))
    active_w = current / 1e3 * volts if current is not None and volts is not None else None
    sleep_w = sleep / 1e6 * volts if sleep is not None and volts is not None else None
    duty = latency * rate_hz
    keeps_up = duty <= 1.0
    if not keeps_up:
        notes.append(f"one inference takes {latency:.4g} s: {rate_hz:g}/s cannot be sustained")
    energy_j = active_w * latency if active_w is not None else None
    avg_mw = None
    if active_w is None:
        notes.append(f"active power unknown ({p.figures['active_current_ma'].source}; "
                     f"voltage: {p.figures['voltage_v'].source})")
    elif sleep_w is None:
        notes.append(f"sleep current unknown ({p.figures['sleep_current_ua'].source}): no average power")
    else:
        busy = min(duty, 1.0)
        avg_mw = (active_w * busy + sleep_w * (1.0 - busy)) * 1e3
    fits = None if budget_mw is None or avg_mw is None else bool(keeps_up and avg_mw <= budget_mw)

    out = dict(
        target=p.name, latency_s=latency, compute_s=compute_s, latency_source=source, latency_how=how,
        flash_stream_s=flash_s, energy_per_inference_j=energy_j,
        energy_breakdown_pj=dict(arithmetic=arith_pj, memory=mem_pj, sram_tier=sram_tier(capacity),
                                 mac_dtype=mac_dtype, memory_share=mem_pj / (arith_pj + mem_pj)
                                 if arith_pj + mem_pj else None),
        rate_hz=rate_hz, duty_cycle=duty, keeps_up=keeps_up, average_power_mw=avg_mw,
        budget_mw=budget_mw, fits_budget=fits, accuracy=accuracy,
        accuracy_per_mw=accuracy / avg_mw if accuracy is not None and avg_mw else None,
        notes=notes)
    if p.kind == "npu":
        out["npu_weights_pj"] = dict(
            weight_stationary_per_inference=sram_read_pj(table, weight_bytes, weight_bytes),
            weight_stationary_load_once=dram_read_pj(table, weight_bytes),
            streaming_from_dram_per_inference=dram_read_pj(table, weight_bytes))
    return out
