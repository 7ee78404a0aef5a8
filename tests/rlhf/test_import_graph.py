"""rlhf/ imports without a cycle (grimp builds the graph from every import statement, function-level ones included),
and the training package never imports Django or the web side."""

import sys
from pathlib import Path

import grimp
import networkx as nx

ROOT = Path(__file__).resolve().parents[2]


def _graph() -> tuple[grimp.ImportGraph, nx.DiGraph]:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    graph = grimp.build_graph("rlhf", cache_dir=None)
    edges = nx.DiGraph()
    for module in graph.modules:
        edges.add_node(module)
        edges.add_edges_from((module, other) for other in graph.find_modules_directly_imported_by(module))
    return graph, edges


def test_rlhf_has_no_import_cycle():
    _, edges = _graph()
    assert len(edges) > 40 and edges.has_edge("rlhf.services.queue", "rlhf.tasks")  # the graph is the real one
    cycles = [cycle for cycle in nx.simple_cycles(edges) if len(cycle) > 1]
    assert not cycles, "import cycles in rlhf/: " + "; ".join(" -> ".join([*c, c[0]]) for c in cycles[:10])


def test_the_training_package_never_imports_django_or_the_web_side():
    graph, _ = _graph()
    training = graph.find_children("rlhf.training") | {"rlhf.training"}
    for module in training:
        imported = graph.find_modules_directly_imported_by(module)
        assert not {m for m in imported if m.startswith("rlhf.") and not m.startswith("rlhf.training")}, module
    external = grimp.build_graph("rlhf", include_external_packages=True, cache_dir=None)
    for module in training:
        assert "django" not in external.find_modules_directly_imported_by(module), module
