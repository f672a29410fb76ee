"""torch-pruning structured channel pruning of the shared float model: MetaPruner with
GroupMagnitudeImportance (L2), the given channel ratio applied to every prunable layer (its default,
non-global), the classifier kept; then the same fine-tuning loop and epochs as PQLR's pruning.
Params and MACs are counted by the same counter as PQLR's rows (pqlr.capture.stats.graph_stats)."""
from __future__ import annotations


from common import Settings, Split, accuracy, clone, fine_tune, stats


def channel_prune(model, split: Split, s: Settings, ratio: float, int8_of=None) -> dict:
    import torch_pruning as tp

    m = clone(model)
    pruner = tp.pruner.MetaPruner(m, split.calib[:1].clone(), importance=tp.importance.GroupMagnitudeImportance(p=2),
                                  pruning_ratio=ratio, ignored_layers=[m.fc])
    pruner.step()
    before = accuracy(m, split)
    secs = fine_tune(m, split, s)
    channels = [m.conv.out_channels] + [b.pw.out_channels for b in m.blocks]
    row = {"ratio": ratio, "accuracy_before_ft": before, "accuracy": accuracy(m, split), **stats(m),
           "channels": channels, "ft_epochs": s.ft_epochs, "ft_seconds": round(secs, 1)}
    if int8_of is not None:     # the pruned torch model through PQLR's int8 PTQ (same for both rows)
        try:
            row.update(int8_of(m, split, s))
        except Exception as e:     # e.g. the pruned DSCNN's config no longer matches its layers
            row["int8_error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
    return row
