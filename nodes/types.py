"""Socket type names and the category root shared by every node of the pack."""

WALK_TARGET = "WALK_TARGET"
WALK_GUIDANCE = "WALK_GUIDANCE"
WALK_STYLE = "WALK_STYLE"
WALK_TRAJECTORY = "WALK_TRAJECTORY"  # a walk for Walk Picture (walk_core.trajectory.WalkTrajectory)

CATEGORY = "random walk"
