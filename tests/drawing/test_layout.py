"""nodeflow.drawing.layout: columns by topological generation, rows that follow their inputs."""

from support.paths import GRAPHS

from nodeflow.drawing.layout import columns, place
from nodeflow.graph import parse_graph, read_graph_file


def test_every_link_goes_left_to_right_in_the_bundled_graphs():
    for path in sorted(GRAPHS.glob("*.json")):
        graph = read_graph_file(path)
        pos = columns(graph)
        assert set(pos) == set(graph.nodes)
        assert len(set(pos.values())) == len(pos), f"{path.name}: two nodes share a cell"
        for nid, spec in graph.nodes.items():
            for value in spec.inputs.values():
                if isinstance(value, dict) and "from" in value:
                    src = value["from"].split(".")[0]
                    assert pos[src][0] < pos[nid][0], (path.name, src, nid)


def test_a_chain_is_one_row_and_a_fan_out_stacks_in_the_next_column():
    link = lambda ref: {"from": ref}  # noqa: E731
    graph = parse_graph(
        {
            "nodes": {
                "a": {"type": "T", "inputs": {}},
                "b": {"type": "T", "inputs": {"x": link("a.out")}},
                "c": {"type": "T", "inputs": {"x": link("a.out")}},
                "d": {"type": "T", "inputs": {"x": link("b.out"), "y": link("c.out")}},
            }
        }
    )
    assert columns(graph) == {"a": (0, 0), "b": (1, 0), "c": (1, 1), "d": (2, 0)}


def test_a_cycle_still_gets_a_layout():
    graph = parse_graph(
        {
            "nodes": {
                "a": {"type": "T", "inputs": {"x": {"from": "b.out"}}},
                "b": {"type": "T", "inputs": {"x": {"from": "a.out"}}},
            }
        }
    )
    assert columns(graph) == {"a": (0, 0), "b": (1, 0)}


def test_place_stacks_each_column_by_size_and_spaces_columns_by_their_widest_node():
    link = lambda ref: {"from": ref}  # noqa: E731
    graph = parse_graph(
        {
            "nodes": {
                "c": {"type": "T", "inputs": {"x": link("a.out")}},
                "b": {"type": "T", "inputs": {"x": link("a.out")}},
                "a": {"type": "T", "inputs": {}},
                "d": {"type": "T", "inputs": {"x": link("b.out"), "y": link("c.out")}},
            }
        }
    )
    sizes = {"a": (300, 500), "b": (200, 100), "c": (250, 40), "d": (100, 100)}
    pos = place(graph, sizes, gap_x=10, gap_y=20)
    rows = columns(graph)
    upper, lower = sorted(("b", "c"), key=lambda n: rows[n][1])
    assert pos["a"] == (0, 0)
    assert pos[upper] == (310, 0) and pos[lower] == (310, sizes[upper][1] + 20)
    assert pos["d"] == (310 + 250 + 10, 0)
