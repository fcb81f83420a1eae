"""Pictures of tabular solutions on grid worlds: arrows for the greedy policy, a grid of V, a heatmap image."""

from __future__ import annotations

import numpy as np

# gymnasium's toy-text grid actions: FrozenLake 0 left, 1 down, 2 right, 3 up; CliffWalking 0 up, 1 right,
# 2 down, 3 left. The arrows are chosen per env id.
ARROWS = {
    "FrozenLake": "←↓→↑",
    "CliffWalking": "↑→↓←",
}


def value_and_policy(agent) -> tuple[np.ndarray, np.ndarray] | None:
    """(V, greedy policy) of a tabular agent (a Q-table or a DP solution), or None for other agents."""
    table = getattr(agent, "table", None)
    if table is not None and hasattr(table, "q"):
        return table.q.max(1), table.q.argmax(1)
    solution = getattr(agent, "solution", None)
    if solution is not None:
        return solution.values, solution.policy
    return None


def arrows_for(env_id: str) -> str | None:
    return next((arrows for prefix, arrows in ARROWS.items() if env_id.startswith(prefix)), None)


def format_grid(values: np.ndarray, policy: np.ndarray, shape: tuple[int, int], env_id: str) -> str:
    """The greedy policy as arrows and V as numbers, one grid row per line."""
    arrows = arrows_for(env_id)
    rows, cols = shape
    lines = ["greedy policy:"]
    for r in range(rows):
        cells = policy[r * cols : (r + 1) * cols]
        lines.append(" ".join(arrows[a] if arrows else str(a) for a in cells))
    lines.append("state values V:")
    for r in range(rows):
        lines.append(" ".join(f"{v:8.3f}" for v in values[r * cols : (r + 1) * cols]))
    return "\n".join(lines)


def table_image(values: np.ndarray, policy: np.ndarray, shape: tuple[int, int], title: str) -> np.ndarray:
    """An RGB image [H, W, 3] (uint8): V as a heatmap with the greedy action drawn as an arrow in each cell."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, cols = shape
    grid = values[: rows * cols].reshape(rows, cols)
    figure, axes = plt.subplots(figsize=(max(4, cols * 0.6), max(3, rows * 0.6)), dpi=80)
    image = axes.imshow(grid, cmap="viridis")
    figure.colorbar(image, ax=axes, fraction=0.046)
    arrows = arrows_for(title.split(" on ")[-1])
    for index, action in enumerate(policy[: rows * cols]):
        label = arrows[action] if arrows else str(action)
        axes.text(index % cols, index // cols, label, ha="center", va="center", color="white", fontsize=12)
    axes.set_title(title)
    axes.set_xticks([])
    axes.set_yticks([])
    figure.canvas.draw()
    pixels = np.asarray(figure.canvas.buffer_rgba())[..., :3].copy()
    plt.close(figure)
    return pixels
