"""Socket type names and the category root shared by every node of the pack."""

WALK_TARGET = "WALK_TARGET"
WALK_GUIDANCE = "WALK_GUIDANCE"
WALK_STYLE = "WALK_STYLE"
WALK_TRAJECTORY = "WALK_TRAJECTORY"  # a walk for Walk Picture (walk_core.trajectory.WalkTrajectory)
WALK_XY_AXIS = "WALK_XY_AXIS"  # one axis of an XY plot: a WalkSampler input and its values (nodes/xy_plot.py)

CATEGORY = "random walk"
