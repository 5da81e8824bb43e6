"""nodeflow's built-in node library. Each public module holds one node;
modules starting with _ are shared helpers, imported only by the nodes that need them."""
