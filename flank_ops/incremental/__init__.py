"""What needs to run: fingerprints of a task's inputs, the decision per task, what a script sources or imports."""
