"""Train an own model: EDM denoising score matching on random crops (Karras et al. 2022, §5 / Alg. "training").

Per step: crops y ~ data, ln sigma ~ N(P_mean, P_std^2), n ~ N(0, sigma^2 I),
loss = lambda(sigma) |D(y + n, sigma) - y|^2 with lambda = (sigma^2 + sigma_data^2) / (sigma sigma_data)^2;
Adam with a linear warm-up and inverse-square-root decay (EDM2), an EMA of the weights (half-life in images,
ramped up over the first part of training) which is what the model file holds. Labels are dropped with
probability ``label_dropout`` so one model also gives the unconditional branch for CFG.

Every random draw (crops, flips, sigma, noise, label drop, dropout) comes from generators seeded by ``seed``;
the training state written beside the model (``*.state.safetensors``) holds them, so a resumed run continues
exactly as an uninterrupted one would. Periodic sample grids and validation losses are written beside the
model: ``<name>.samples/step_000500.png`` and ``<name>.metrics.jsonl``.
"""
from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable, Dict, List, Optional

import torch

from .checkpoint import check_state_dict, load_state, save_model, save_state, state_path
from .data import CROPS, CropSampler, ImageSet
from .train_limits import check_training
from .unet import EDMDenoiser, UNetConfig
from .validation import ValidationSet

log = logging.getLogger(__name__)

DEVICES = ("auto", "cpu", "cuda")
# fields a resumed run may change (the budget); every other field must match the state's
RESUMABLE = ("steps", "minutes", "sample_every", "val_every", "checkpoint_every", "device")


@dataclass(frozen=True)
class TrainConfig:
    size: int = 64  # crop size in pixels (the model walks any multiple of 2**(levels-1) afterwards)
    batch_size: int = 16
    steps: int = 0  # stop after this many steps in all (0 = no step limit; then minutes must be > 0)
    minutes: float = 10.0  # stop cleanly after this much training time in all, resumed runs included (0 = no limit)
    lr: float = 1e-3  # Adam learning rate after warm-up
    warmup: int = 100  # steps of linear learning-rate warm-up
    decay: int = 2000  # learning rate / sqrt(step / decay) after this many steps (EDM2); 0 = constant
    ema_halflife: float = 2000.0  # EMA half-life in images
    ema_rampup: float = 0.1  # ... at most this fraction of the images seen so far
    p_mean: float = -1.2  # log-normal sigma distribution of EDM
    p_std: float = 1.2
    label_dropout: float = 0.1  # probability a label is replaced by "no class" (CFG's unconditional branch)
    crops: str = "auto"  # native | fit | mixed | auto (models/data.py)
    flip: bool = True
    seed: int = 0
    sample_every: int = 500  # steps between sample grids (0 = only at the end)
    val_every: int = 250  # steps between validation losses (0 = only at the end)
    checkpoint_every: int = 250  # steps between model + state saves (0 = only at the end)
    device: str = "auto"  # auto = CUDA when present

    def __post_init__(self):
        checks = (
            ("size", self.size >= 8, ">= 8"), ("batch_size", self.batch_size >= 1, ">= 1"),
            ("steps", self.steps >= 0, ">= 0"), ("minutes", self.minutes >= 0, ">= 0"),
            ("steps/minutes", self.steps > 0 or self.minutes > 0, "a step limit or a time limit (or both)"),
            ("lr", 0 < self.lr < 1, "in (0, 1)"), ("warmup", self.warmup >= 0, ">= 0"),
            ("decay", self.decay >= 0, ">= 0"), ("ema_halflife", self.ema_halflife > 0, "> 0"),
            ("ema_rampup", 0 <= self.ema_rampup <= 1, "in [0, 1]"), ("p_std", self.p_std > 0, "> 0"),
            ("label_dropout", 0 <= self.label_dropout < 1, "in [0, 1)"), ("crops", self.crops in CROPS, str(CROPS)),
            ("seed", 0 <= self.seed < 2**63, "in [0, 2**63)"), ("device", self.device in DEVICES, str(DEVICES)),
            ("sample_every", self.sample_every >= 0, ">= 0"), ("val_every", self.val_every >= 0, ">= 0"),
            ("checkpoint_every", self.checkpoint_every >= 0, ">= 0"),
        )
        for name, ok, allowed in checks:
            if not ok:
                value = (self.steps, self.minutes) if "/" in name else getattr(self, name)
                raise ValueError(f"TrainConfig: {name}={value!r} is not allowed; expected {allowed}")

    def resolved_device(self) -> torch.device:
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        if self.device == "cuda" and not torch.cuda.is_available():
            raise ValueError("TrainConfig: device='cuda' but torch sees no CUDA device; expected 'auto' or 'cpu'")
        return torch.device(self.device)


@dataclass
class TrainResult:
    path: Path
    model: EDMDenoiser  # the EMA denoiser, eval mode, CPU
    steps: int
    images: int
    seconds: float  # training time in all (resumed runs included)
    loss: float  # mean training loss over the last steps
    val_loss: Optional[float]
    stopped: str  # "steps", "time", or "done" (a resumed run that had nothing left to do)


def progress_text(info: dict) -> str:
    """The detail a progress report shows for one ``progress(fraction, info)`` call: ``step 120, loss 0.0831``."""
    loss = info.get("loss")
    return f"step {info.get('step')}" + ("" if loss is None else f", loss {loss:.4f}")


def _learning_rate(config: TrainConfig, step: int) -> float:
    lr = config.lr
    if config.warmup:
        lr *= min(1.0, (step + 1) / config.warmup)
    if config.decay:
        lr /= math.sqrt(max(step / config.decay, 1.0))
    return lr


def _ema_beta(config: TrainConfig, images: int) -> float:
    halflife = min(config.ema_halflife, images * config.ema_rampup) if config.ema_rampup else config.ema_halflife
    return 0.5 ** (config.batch_size / max(halflife, 1e-8))


def _generator(seed: int) -> torch.Generator:
    g = torch.Generator()
    g.manual_seed(seed)
    return g


class Trainer:
    """One training run; :meth:`run` trains until a limit, saving model, state, samples and metrics."""

    def __init__(self, data: ImageSet, out: Path | str, config: TrainConfig = TrainConfig(),
                 architecture: UNetConfig = UNetConfig(), val: Optional[ImageSet] = None):
        self.out = Path(out)
        if not self.out.name.endswith(".safetensors"):
            raise ValueError(f"train: out={str(out)!r}; expected a file name ending in .safetensors")
        if architecture.num_classes != len(data.classes):
            architecture = replace(architecture, num_classes=len(data.classes))
        check_training("train", config.size, config.batch_size, architecture)  # before anything is built
        self.data, self.config, self.architecture = data, config, architecture
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.device = config.resolved_device()
        self.sampler = CropSampler(data, config.size, config.crops, config.flip)
        self.model = EDMDenoiser(architecture, seed=config.seed).to(self.device)
        self.model.check_size(config.size, config.size, "train")
        self.ema = EDMDenoiser(architecture).to(self.device).requires_grad_(False)
        self.ema.load_state_dict(self.model.state_dict())
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.lr, betas=(0.9, 0.99), eps=1e-8)
        self.generator = _generator(config.seed)
        held = val if val is not None else data
        self.validation = ValidationSet.from_images(held, config.size, seed=config.seed + 1,
                                                    held_out=val is not None)
        self.step = 0
        self.images = 0
        self.seconds = 0.0  # training time before this run (a resumed state's)
        self.val_loss: Optional[float] = None  # the last validation loss saved
        self.losses: List[float] = []

    # --- one step -------------------------------------------------------------------------------------------
    def _train_step(self) -> float:
        c, g = self.config, self.generator
        y, labels = self.sampler.batch(c.batch_size, g)  # [B, 3, S, S], [B]
        sigma = (torch.randn(c.batch_size, generator=g) * c.p_std + c.p_mean).exp()  # ln sigma ~ N(P_mean, P_std^2)
        noise = torch.randn(y.shape, generator=g) * sigma[:, None, None, None]
        if self.architecture.num_classes:
            drop = torch.rand(c.batch_size, generator=g) < c.label_dropout
            labels = torch.where(drop, torch.full_like(labels, self.architecture.num_classes), labels)
        else:
            labels = None
        dropout_seed = int(torch.randint(2**62, (1,), generator=g))
        y, noise, sigma = (t.to(self.device, non_blocking=True) for t in (y, noise, sigma))
        labels = labels.to(self.device) if labels is not None else None
        sd = self.architecture.sigma_data
        weight = (sigma**2 + sd**2) / (sigma * sd) ** 2  # lambda(sigma)
        for group in self.optimizer.param_groups:
            group["lr"] = _learning_rate(c, self.step)
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            torch.manual_seed(dropout_seed)  # dropout, if any, is fixed by the seed too
            denoised = self.model(y + noise, sigma, labels)
            loss = (weight[:, None, None, None] * (denoised - y) ** 2).mean()
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
        self.images += c.batch_size
        beta = _ema_beta(c, self.images)
        with torch.no_grad():
            for e, p in zip(self.ema.parameters(), self.model.parameters()):
                e.lerp_(p, 1 - beta)
        self.step += 1
        return float(loss.detach())

    # --- files ----------------------------------------------------------------------------------------------
    def _facts(self, seconds: float, val_loss: Optional[float]) -> dict:
        return {"config": asdict(self.config), "steps": self.step, "images": self.images,
                "seconds": round(seconds, 2), "data": self.data.source, "pictures": len(self.data.pictures),
                "val_loss": val_loss, "validation": self.validation.kind, "torch": torch.__version__,
                "device": str(self.device)}

    def save(self, seconds: float, val_loss: Optional[float]) -> None:
        save_model(self.ema, self.out, self.data.classes, self._facts(seconds, val_loss))
        tensors: Dict[str, torch.Tensor] = {}
        tensors.update({"model." + k: v for k, v in self.model.state_dict().items()})
        tensors.update({"ema." + k: v for k, v in self.ema.state_dict().items()})
        for i, state in self.optimizer.state_dict()["state"].items():
            for key, value in state.items():
                tensors[f"adam.{i}.{key}"] = torch.as_tensor(value)
        tensors["rng"] = self.generator.get_state()
        meta = {"config": json.dumps(asdict(self.config), sort_keys=True), "architecture": self.architecture.to_json(),
                "classes": json.dumps(list(self.data.classes)), "step": str(self.step), "images": str(self.images),
                "seconds": repr(float(seconds)), "val_loss": json.dumps(val_loss), "data": self.data.source}
        save_state(state_path(self.out), tensors, meta)

    def resume(self) -> bool:
        """Continue from the state beside ``out`` when there is one; False when there is none."""
        path = state_path(self.out)
        if not path.is_file():
            return False
        who = f"resume ({path})"
        tensors, meta = load_state(path)
        # compared as values, so a state written before a field with a default existed still resumes
        if UNetConfig.from_json(meta.get("architecture", "{}"), who) != self.architecture:
            raise ValueError(f"{who}: the state's architecture {meta.get('architecture')} differs from this run's "
                             f"{self.architecture.to_json()}; expected the same, or a new output name")
        saved = {**asdict(TrainConfig()), **json.loads(meta.get("config", "{}"))}
        mine = asdict(self.config)
        differ = sorted(k for k in mine if k not in RESUMABLE and saved.get(k) != mine[k])
        if differ:
            raise ValueError(f"{who}: settings {', '.join(f'{k} (state {saved.get(k)!r}, now {mine[k]!r})' for k in differ)} "
                             f"differ from the saved run; only {', '.join(RESUMABLE)} may change when resuming (start afresh with "
                             "resume off / --fresh, or train under a new name)")
        if json.loads(meta.get("classes", "[]")) != list(self.data.classes):
            raise ValueError(f"{who}: the state's classes {meta.get('classes')} differ from the data's "
                             f"{list(self.data.classes)}")
        self.model.load_state_dict(check_state_dict(self.model, tensors, who, "model."))
        self.ema.load_state_dict(check_state_dict(self.ema, tensors, who, "ema."))
        opt = self.optimizer.state_dict()
        for i in range(len(opt["param_groups"][0]["params"])):
            keys = [k for k in tensors if k.startswith(f"adam.{i}.")]
            if keys:
                opt["state"][i] = {k.split(".", 2)[2]: tensors[k].to(self.device) if k.endswith("exp_avg") or
                                   k.endswith("exp_avg_sq") else tensors[k] for k in keys}
        self.optimizer.load_state_dict(opt)
        self.generator.set_state(tensors["rng"])
        self.step, self.images = int(meta["step"]), int(meta["images"])
        self.seconds = float(meta.get("seconds", "0"))
        self.val_loss = json.loads(meta.get("val_loss", "null"))
        log.info("resumed %s at step %d (%d images)", self.out.name, self.step, self.images)
        return True

    @property
    def metrics_path(self) -> Path:
        return self.out.with_name(self.out.name[: -len(".safetensors")] + ".metrics.jsonl")

    def write_metrics(self, record: dict) -> None:
        with self.metrics_path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record, sort_keys=True) + "\n")

    def write_samples(self) -> Path:
        from .samples import sample_grid

        folder = self.out.with_name(self.out.name[: -len(".safetensors")] + ".samples")
        return sample_grid(self.ema, self.data.classes, self.config.size, folder / f"step_{self.step:06d}.png",
                           seed=self.config.seed)

    # --- the loop -------------------------------------------------------------------------------------------
    def run(self, progress: Optional[Callable[[float, dict], None]] = None,
            check: Optional[Callable[[], None]] = None) -> TrainResult:
        """Train until ``steps`` or ``minutes`` (whichever first); ``progress(fraction, info)`` after each step (the
        last call, fraction 1, after the final samples; ``info["samples"]`` = the grid written at that step or None);
        ``check()`` may raise to stop (e.g. ComfyUI's interrupt): the state is saved first, then it re-raises."""
        c = self.config
        budget = c.minutes * 60 if c.minutes else math.inf
        if (c.steps and self.step >= c.steps) or self.seconds >= budget:  # a resumed run that is already done
            log.info("%s: already trained (%d steps, %.0f s); raise steps or minutes to train longer",
                     self.out.name, self.step, self.seconds)
            return self._result("done", self.val_loss)
        start = time.perf_counter() - self.seconds
        val_loss, stopped = None, "steps"
        self.model.train()

        def every(n):
            return n and self.step % n == 0

        try:
            while not c.steps or self.step < c.steps:
                if check is not None:
                    check()
                self.losses.append(self._train_step())
                seconds = time.perf_counter() - start
                if bool(c.steps and self.step >= c.steps) or seconds >= budget:  # final work follows the loop
                    stopped = "time" if seconds >= budget and not (c.steps and self.step >= c.steps) else "steps"
                    break
                grid = None
                if every(c.val_every):
                    val_loss = self.validation.loss(self.ema)
                    self.write_metrics({"step": self.step, "images": self.images, "seconds": round(seconds, 2),
                                        "loss": self._recent_loss(), "val_loss": val_loss})
                if every(c.sample_every):
                    grid = self.write_samples()
                if every(c.checkpoint_every):
                    self.save(seconds, val_loss)
                if progress is not None:
                    frac = max(self.step / c.steps if c.steps else 0.0, seconds / budget if c.minutes else 0.0)
                    progress(min(frac, 0.999), {"step": self.step, "loss": self.losses[-1], "seconds": seconds,
                                                "samples": grid})
        except BaseException:
            self.save(time.perf_counter() - start, val_loss)  # nothing lost: the run resumes from here
            log.warning("training stopped at step %d; state saved to %s", self.step, state_path(self.out))
            raise
        self.seconds = time.perf_counter() - start
        val_loss = self.validation.loss(self.ema)
        self.write_metrics({"step": self.step, "images": self.images, "seconds": round(self.seconds, 2),
                            "loss": self._recent_loss(), "val_loss": val_loss, "final": True})
        grid = self.write_samples()
        self.save(self.seconds, val_loss)
        if progress is not None:
            progress(1.0, {"step": self.step, "loss": self._recent_loss(), "seconds": self.seconds, "samples": grid})
        log.info("trained %s: %d steps, %d images in %.0f s (%.1f images/s); val loss %.4f", self.out.name, self.step,
                 self.images, self.seconds, self.images / max(self.seconds, 1e-9), val_loss)
        return self._result(stopped, val_loss)

    def _recent_loss(self) -> float:
        recent = self.losses[-50:]
        return sum(recent) / len(recent) if recent else float("nan")

    def _result(self, stopped: str, val_loss: Optional[float]) -> TrainResult:
        ema = EDMDenoiser(self.architecture)
        ema.load_state_dict({k: v.cpu() for k, v in self.ema.state_dict().items()})
        return TrainResult(self.out, ema.eval().requires_grad_(False), self.step, self.images, self.seconds,
                           self._recent_loss(), val_loss, stopped)


def train(data: ImageSet, out: Path | str, config: TrainConfig = TrainConfig(),
          architecture: UNetConfig = UNetConfig(), val: Optional[ImageSet] = None, resume: bool = True,
          progress=None, check=None) -> TrainResult:
    """Train a model on ``data`` into ``out`` (a .safetensors path); continues from the state beside ``out`` when
    ``resume`` and one exists. See :class:`TrainConfig` for the settings."""
    # ComfyUI runs nodes under torch.inference_mode(): tensors made there cannot be trained
    with torch.inference_mode(False), torch.enable_grad():
        trainer = Trainer(data, out, config, architecture, val)
        if not (resume and trainer.resume()):
            if state_path(out).exists():
                log.info("starting afresh: %s is overwritten", state_path(out))
            trainer.metrics_path.unlink(missing_ok=True)
        return trainer.run(progress, check)
