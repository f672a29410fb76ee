"""Arena planner: no two live buffers overlap, greedy never needs more than linear, graph plans."""
from hypothesis import given, settings, strategies as st

import graphs
from pqlr.deploy.plan import ALIGN, GreedyPlanner, LinearPlanner, plan_graph

buffers = st.lists(st.tuples(st.integers(0, 5000), st.integers(0, 30), st.integers(0, 10)),
                   min_size=1, max_size=40)


def check_no_overlap(planner, spec):
    for i, (size_i, first_i, last_i) in enumerate(spec):
        oi = planner.offset(i)
        assert oi % ALIGN == 0 and oi + size_i <= planner.max_size()
        for j in range(i):
            size_j, first_j, last_j = spec[j]
            if first_i <= last_j and first_j <= last_i and size_i and size_j:
                oj = planner.offset(j)
                assert oi + size_i <= oj or oj + size_j <= oi, (i, j)


@settings(max_examples=150, deadline=None)
@given(buffers)
def test_planners_never_overlap_live_buffers(raw):
    spec = [(size, first, first + span) for size, first, span in raw]
    greedy, linear = GreedyPlanner(), LinearPlanner()
    for size, first, last in spec:
        assert greedy.add_buffer(size, first, last) == linear.add_buffer(size, first, last)
    check_no_overlap(greedy, spec)
    check_no_overlap(linear, spec)
    assert greedy.max_size() <= linear.max_size()
    # a lower bound every valid plan obeys: the largest sum of live sizes at one step
    peak = max(sum(-(-s // ALIGN) * ALIGN for s, f, l in spec if f <= t <= l) for t in range(41))
    assert peak <= greedy.max_size()


def test_greedy_reuses_dead_memory():
    p = GreedyPlanner()
    a = p.add_buffer(100, 0, 1)
    b = p.add_buffer(100, 2, 3)          # lives after a dies: same place
    c = p.add_buffer(10, 1, 2)           # overlaps both in time
    assert p.offset(a) == p.offset(b)
    assert p.max_size() == 112 and p.offset(c) == 100


def test_plan_graph(cnn_graph):
    plan = plan_graph(cnn_graph)
    lin = plan_graph(cnn_graph, "linear", in_place=False)
    assert plan.arena_bytes <= lin.arena_bytes
    # graph input and output live in the caller's buffers
    assert "x" not in plan.offsets and "y" not in plan.offsets
    # requantize d1 -> r1 runs in place (same bytes, d1 read by nobody else)
    assert plan.in_place == ["rq1"] and plan.offsets["d1"] == plan.offsets["r1"]
    assert lin.in_place == [] and lin.offsets["d1"] != lin.offsets["r1"]
    # tensors live at the same step never overlap
    steps = {}
    for i, node in enumerate(cnn_graph.nodes):
        for t in node.inputs + node.outputs:
            steps.setdefault(t, []).append(i)
    arena = [t for t in plan.offsets if t not in ("d1", "r1")] + ["d1"]
    for a in arena:
        for b in arena:
            if a < b and set(range(min(steps[a]), max(steps[a]) + 1)) & set(range(min(steps[b]), max(steps[b]) + 1)):
                oa, ob = plan.offsets[a], plan.offsets[b]
                na, nb = cnn_graph.tensor(a).nbytes, cnn_graph.tensor(b).nbytes
                assert oa + na <= ob or ob + nb <= oa, (a, b)
    assert plan.arena_bytes >= plan.activation_bytes
    assert plan.arena_bytes == max(plan.offsets[t] + cnn_graph.tensor(t).nbytes for t in plan.offsets)


def test_in_place_refused_when_input_is_read_later(cnn_graph):
    g = graphs.with_add(cnn_graph)
    plan = plan_graph(g)
    assert "rq1" not in plan.in_place            # d1 is still read by add1
    assert "add1" in plan.in_place and plan.offsets["a1"] == plan.offsets["r1"]
    assert plan.offsets["d1"] != plan.offsets["r1"]


def test_scratch_is_a_buffer_live_during_its_node(cnn_graph, monkeypatch):
    import dataclasses

    from pqlr.ir import ops

    conv = ops.OPS["conv2d"]
    monkeypatch.setitem(ops.OPS, "conv2d", dataclasses.replace(conv, scratch_bytes=lambda n, g: 333))
    plan = plan_graph(cnn_graph)
    off, n = plan.scratch[0]
    assert n == 333 and plan.scratch_bytes == 333 and off % ALIGN == 0
    c1 = plan.offsets["c1"]                       # conv1 writes c1 while it uses its scratch
    assert off + n <= c1 or c1 + cnn_graph.tensor("c1").nbytes <= off
    assert plan.arena_bytes >= 720 + 336


def test_a_reshape_of_the_input_is_a_view_of_its_buffer():
    """(1, 8, 4) read as (8, 4): no arena bytes and no code, and nothing may run in place over it."""
    from pqlr.deploy.plan import input_views
    from pqlr.ir.graph import Graph, Node, Tensor

    ts = {n: Tensor(n, s, "s8", 8, 0.1, 0) for n, s in (("x", (1, 8, 4)), ("v", (8, 4)), ("y", (8, 4)))}
    nodes = [Node("view", "reshape", ["x"], ["v"]),
             Node("rq", "requantize", ["v"], ["y"], {"multiplier": 1 << 30, "shift": 31})]
    g = Graph(ts, nodes, ["x"], ["y"])
    assert input_views(g) == {"v": "x"}
    plan = plan_graph(g)
    assert plan.views == {"v": "x"} and plan.arena_bytes == 0 and plan.in_place == []
