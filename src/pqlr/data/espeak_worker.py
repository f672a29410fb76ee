"""espeak-ng synthesis worker, run as a script in a fresh process (stdlib + espeakng_loader only).

stdin: JSON list of [voice+variant, text, words per minute, pitch, pitch range, rand seed].
stdout: sample rate (uint32 LE), then per job: sample count (uint32 LE) and int16 LE samples.
espeak-ng keeps state between utterances, so a fresh process per set keeps the output reproducible.
Exit code 3 with a one-line message on stderr when a voice is missing or synthesis yields nothing.
"""
import ctypes
import json
import struct
import sys

AUDIO_OUTPUT_SYNCHRONOUS, POS_CHARACTER, CHARS_UTF8 = 2, 1, 1
RATE, PITCH, RANGE = 1, 3, 4                       # espeak_PARAMETER values


def main() -> int:
    import espeakng_loader

    jobs = json.load(sys.stdin)
    lib = ctypes.CDLL(espeakng_loader.get_library_path())
    rate = lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, espeakng_loader.get_data_path().encode(), 0)
    if rate <= 0:
        print(f"espeak-ng failed to initialise ({rate})", file=sys.stderr)
        return 3
    chunks = []
    callback_t = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)

    def on_audio(wav, n, events):
        if n > 0:
            chunks.append(ctypes.string_at(wav, 2 * n))
        return 0

    keep = callback_t(on_audio)
    lib.espeak_SetSynthCallback(keep)
    out = sys.stdout.buffer
    out.write(struct.pack("<I", rate))
    for voice, text, wpm, pitch, prange, seed in jobs:
        chunks.clear()
        if lib.espeak_SetVoiceByName(voice.encode()) != 0:
            print(f"espeak-ng has no voice {voice!r}", file=sys.stderr)
            return 3
        for param, value in ((RATE, wpm), (PITCH, pitch), (RANGE, prange)):
            lib.espeak_SetParameter(param, int(value), 0)
        lib.espeak_ng_SetRandSeed(int(seed))
        data = text.encode("utf-8")
        status = lib.espeak_Synth(data, len(data) + 1, 0, POS_CHARACTER, 0, CHARS_UTF8, None, None)
        lib.espeak_Synchronize()
        pcm = b"".join(chunks)
        if status != 0 or not pcm:
            print(f"espeak-ng produced no audio for {text!r} ({voice}), status {status}", file=sys.stderr)
            return 3
        out.write(struct.pack("<I", len(pcm) // 2))
        out.write(pcm)
    lib.espeak_Terminate()
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
