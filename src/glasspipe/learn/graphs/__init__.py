"""Graphs of the particles: the freud and torch-cluster backends (build, device) behind one build_graph."""

from glasspipe.learn.graphs.build import GRAPH_BACKENDS, Graph, build_graph, prediction_backend

__all__ = ["GRAPH_BACKENDS", "Graph", "build_graph", "prediction_backend"]
