"""igraph's PageRank on an edge-list file, for `dotcompute bench pagerank`.

Embedded in the dotcompute binary (crates/dotcompute-cli/src/bench/igraph.rs)
and run as `python -c <this file> PATH NODES DAMPING REPETITIONS RANKS_OUT`.

Per repetition, timed separately with time.perf_counter():
  load  = igraph.Graph.Read_Edgelist(PATH, directed=True) on the very file
          dotcompute loads (plain "src<TAB>dst" lines, no header), plus
          add_vertices for trailing nodes without edges, so the graph has NODES
          vertices as dotcompute's has;
  solve = Graph.pagerank(damping=DAMPING, directed=True,
          implementation="prpack"): igraph's default PageRank (PRPACK, the
          dangling rank spread evenly, tolerance 1e-10).
The previous repetition's graph and ranks are freed before the clock starts.
`import igraph` is timed once, apart.

Writes the last repetition's ranks to RANKS_OUT as little-endian float64 in
vertex order, and prints one JSON object on stdout: the timings, the graph's
size, and igraph's and Python's versions. If igraph cannot be imported it
prints {"error": ...} and exits with status 3.
"""

import json
import sys
import time
from array import array


def main():
    path, nodes, damping, repetitions, ranks_out = sys.argv[1:6]
    nodes, damping, repetitions = int(nodes), float(damping), int(repetitions)

    t = time.perf_counter()
    try:
        import igraph
    except Exception as e:  # noqa: BLE001 - any failure means "not measured"
        print(json.dumps({"error": "cannot import igraph: %s: %s" % (type(e).__name__, e)}))
        return 3
    import_seconds = time.perf_counter() - t

    loads, solves = [], []
    graph = ranks = None
    for _ in range(repetitions):
        graph = ranks = None
        t0 = time.perf_counter()
        graph = igraph.Graph.Read_Edgelist(path, directed=True)
        if graph.vcount() < nodes:
            graph.add_vertices(nodes - graph.vcount())
        t1 = time.perf_counter()
        ranks = graph.pagerank(damping=damping, directed=True, implementation="prpack")
        t2 = time.perf_counter()
        loads.append(t1 - t0)
        solves.append(t2 - t1)

    out = array("d", ranks)
    if sys.byteorder == "big":
        out.byteswap()
    with open(ranks_out, "wb") as f:
        out.tofile(f)

    print(
        json.dumps(
            {
                "igraph_version": igraph.__version__,
                "python_version": sys.version.split()[0],
                "python": sys.executable,
                "vertices": graph.vcount(),
                "edges": graph.ecount(),
                "import_seconds": import_seconds,
                "load_seconds": loads,
                "solve_seconds": solves,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
