"""How often exploration noise alone takes MountainCarContinuous-v0's car to the goal, without any learning.

TD3 explores with mu(s) + noise, clipped to [-1, 1]. On MountainCarContinuous the reward is sparse (+100 at the
goal, -0.1 a^2 per step): until one episode reaches the goal, the critic has nothing to learn but the action cost.
So the first question about a noise process is how likely it is to reach the goal at all. This script runs many
cars at once under Ornstein-Uhlenbeck noise x <- x - theta x + sigma N(0, 1) (td3.py's update, `algo.ou_theta` and
`algo.exploration_noise`), around a fixed actor output (0: an untrained actor; +-1: an actor saturated at full
throttle one way, as the failing runs were), and prints the fraction of cars that reach the goal in their first
episode. The dynamics are gymnasium's (its constants are read from the env, and the vectorised step is checked
against `env.step` first).

    python bench/mountaincar_exploration.py                       # the zoo's noise, the preset's, a few others
    python bench/mountaincar_exploration.py --noise 0.05 0.3 --cars 5000
"""

from __future__ import annotations

import argparse

import gymnasium as gym
import numpy as np

ENV_ID = "MountainCarContinuous-v0"
# (ou_theta, exploration_noise) per step: TD3's default white Gaussian noise (theta 1 forgets the last step), SB3's
# OU noise as the RL Zoo sets it for TD3 (theta 0.15, sigma 0.5 at dt 0.01) and td3_mountaincar_continuous.yaml's
NOISES = {
    "white Gaussian (TD3's default)": (1.0, 0.1),
    "zoo (SB3 OU at dt 0.01)": (0.0015, 0.05),
    "preset": (0.05, 0.3),
}


class VectorCar:
    """MountainCarContinuous-v0's step for many cars at once, with the env's own constants."""

    def __init__(self, env: gym.Env) -> None:
        car = env.unwrapped
        self.power, self.max_speed = car.power, car.max_speed
        self.min_position, self.max_position, self.goal = car.min_position, car.max_position, car.goal_position
        self.goal_velocity, self.max_steps = car.goal_velocity, env.spec.max_episode_steps

    def step(self, position, velocity, force):
        velocity = np.clip(
            velocity + force * self.power - 0.0025 * np.cos(3 * position), -self.max_speed, self.max_speed
        )
        position = np.clip(position + velocity, self.min_position, self.max_position)
        velocity = np.where((position == self.min_position) & (velocity < 0), 0.0, velocity)
        return position, velocity, (position >= self.goal) & (velocity >= self.goal_velocity)


def check_against_env(car: VectorCar, env: gym.Env, rng: np.random.Generator) -> None:
    """The vectorised step must follow env.step exactly (a changed env would make the figures meaningless)."""
    obs, _ = env.reset(seed=0)
    position, velocity = np.array([obs[0]], dtype=np.float64), np.array([obs[1]], dtype=np.float64)
    for _ in range(300):
        force = rng.uniform(-1, 1)
        obs, _, terminated, _, _ = env.step(np.array([force], dtype=np.float32))
        position, velocity, reached = car.step(position, velocity, np.float32(force))
        if not np.allclose([position[0], velocity[0]], obs, atol=1e-5) or bool(reached[0]) != terminated:
            raise SystemExit(f"{ENV_ID}'s dynamics differ from this script's; update VectorCar.step.")
        if terminated:
            break


def first_episode_goal_rate(car: VectorCar, theta: float, sigma: float, actor: float, cars: int, seed: int) -> float:
    """Fraction of cars whose first episode reaches the goal under clip(actor + OU noise), the noise starting at 0."""
    rng = np.random.default_rng(seed)
    noise = np.zeros(cars)
    position, velocity = rng.uniform(-0.6, -0.4, cars), np.zeros(cars)
    reached = np.zeros(cars, dtype=bool)
    for _ in range(car.max_steps):
        noise += -theta * noise + sigma * rng.standard_normal(cars)
        position, velocity, at_goal = car.step(position, velocity, np.clip(actor + noise, -1.0, 1.0))
        reached |= at_goal
    return float(reached.mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--noise", nargs=2, type=float, metavar=("THETA", "SIGMA"), help="one noise to measure")
    parser.add_argument("--cars", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    env = gym.make(ENV_ID)
    car = VectorCar(env)
    check_against_env(car, env, np.random.default_rng(args.seed))
    noises = {"--noise": tuple(args.noise)} if args.noise else NOISES
    actors = (-1.0, 0.0, 1.0)
    print(
        "| noise | ou_theta | exploration_noise | noise std | " + " | ".join(f"actor {a:+.0f}" for a in actors) + " |"
    )
    print("|---|---|---|---|" + "---|" * len(actors))
    for name, (theta, sigma) in noises.items():
        std = sigma / np.sqrt(2 * theta - theta**2)  # stationary std of x <- (1 - theta) x + sigma N(0, 1)
        rates = [first_episode_goal_rate(car, theta, sigma, a, args.cars, args.seed) for a in actors]
        print(f"| {name} | {theta} | {sigma} | {std:.2f} | " + " | ".join(f"{r:.3f}" for r in rates) + " |")
    print(f"fraction of {args.cars} cars reaching the goal in their first episode (seed {args.seed})")


if __name__ == "__main__":
    main()
