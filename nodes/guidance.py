"""GuidanceStep family: each node takes the previous WALK_GUIDANCE chain, adds one term, returns the new chain.

One node per guidance term kind (``walk_core.guidance.TERMS``), declared from one :class:`Step` entry:
its node id, display name, description, what its weight means, and the term's own inputs. The inputs
are named exactly as the term's dataclass fields and take the term's defaults, so a node call is
``chain.plus(Term(**inputs))``. A kind without a Step entry has no node (the tests say which).
"""
from __future__ import annotations

import dataclasses
import inspect
import math
from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Tuple

from ..walk_core.guidance import TERMS, GuidanceChain
from .inputs import pick, pick_as
from .types import CATEGORY, WALK_GUIDANCE, WALK_TARGET

Declaration = Tuple[Any, Dict[str, Any]]  # (socket type or combo choices, options)


@dataclass(frozen=True)
class Step:
    """One GuidanceStep node. ``weight`` holds the weight's limits and tooltip (None: the term has no
    weight of its own and the node no weight input); ``fields`` the term's own inputs (named as the
    term's fields). Widget defaults come from the term's dataclass defaults."""

    kind: str
    node_id: str
    display_name: str
    description: str
    weight: Optional[Dict[str, Any]]
    fields: Dict[str, Declaration] = field(default_factory=dict)


def _scale(meaning: str, hi: float = 30.0) -> Dict[str, Any]:
    return {"min": 0.0, "max": hi, "step": 0.1, "tooltip": meaning}


LAYERS_PAG = ("The UNet layers whose self-attention is perturbed, comma-separated: middle:0 (the default, as ComfyUI's "
              "PAG node), input:N, output:N (SD1.5 has transformer blocks at input 1, 2, 4, 5, 7, 8 and output 3-11). "
              "A layer the model does not have is an error.")

STEPS: Tuple[Step, ...] = (
    Step("cfg", "GuidanceStepCFG", "Guidance Step: CFG", (
        "Classifier-free guidance (Ho & Salimans 2022): D = D_u + w (D_c - D_u), pushing each step's denoised "
        "estimate away from the unconditional prediction. Needs a target with a conditional branch: a class "
        "chosen on the mixture target, or a MODEL target with prompts."),
        _scale("CFG scale w: D = D_u + w (D_c - D_u). 1 = the conditional prediction unchanged (no guidance); "
               "above 1 pushes samples towards the chosen class and away from the others; 0 = unconditional.")),
    Step("rescale", "GuidanceStepRescale", "Guidance Step: CFG Rescale", (
        "CFG rescale (Lin et al. 2023, 'Common Diffusion Noise Schedules and Sample Steps are Flawed'): "
        "scales each image's guided estimate back to the standard deviation of the conditional prediction, "
        "undoing the over-exposure of a high CFG scale. Put it after a CFG (or APG) step. It has no weight of "
        "its own: phi sets how much, start/end percent and the schedule where."),
        None,
        {
            "phi": ("FLOAT", {"min": 0.0, "max": 1.0, "step": 0.01, "tooltip": (
                "Rescale fraction phi: D = phi * rescaled + (1 - phi) * guided, where rescaled has the "
                "conditional prediction's std. 0 = off (plain CFG), 0.7 = the paper's choice, 1 = fully "
                "rescaled.")}),
        }),
    Step("apg", "GuidanceStepAPG", "Guidance Step: APG", (
        "Adaptive projected guidance (Sadat, Hilliges & Weber 2024, 'Eliminating Oversaturation and Artifacts "
        "of High Guidance Scales in Diffusion Models'): the CFG update split into parts parallel and "
        "orthogonal to the conditional prediction, the parallel part (which over-saturates) down-weighted, the "
        "update's norm optionally capped, with reverse momentum across evaluations. Use it instead of CFG at "
        "high scales; it needs a conditional branch, like CFG."),
        _scale("Guidance scale w, as CFG's: D = D_c + (w - 1) (update). 1 = no guidance, higher = stronger "
               "pull towards the class."),
        {
            "eta": ("FLOAT", {"min": 0.0, "max": 1.0, "step": 0.01, "tooltip": (
                "Weight of the update's part parallel to the conditional prediction (the part that "
                "over-saturates): 0 = dropped (the paper's choice), 1 = kept as in CFG.")}),
            "norm_threshold": ("FLOAT", {"min": 0.0, "max": 10000.0, "step": 0.1, "tooltip": (
                "Cap r on the norm of each image's guidance update (scaled down to r when larger); 0 = no cap. "
                "The norm grows with the image size: for n values (3 x width x height) about 0.5 * sqrt(n) "
                "caps the update at an RMS of 0.5 per value.")}),
            "momentum": ("FLOAT", {"min": -0.99, "max": 0.99, "step": 0.01, "tooltip": (
                "Momentum beta on the guidance update across evaluations; negative (the paper uses -0.5 with "
                "DDIM) pushes away from the previous update, 0 = off (the default: with stochastic walks or 20 "
                "steps or fewer the reverse momentum was measured to throw pictures off the target).")}),
        }),
    Step("cfg_zero_star", "GuidanceStepCFGZeroStar", "Guidance Step: CFG-Zero*", (
        "CFG-Zero* (Fan et al. 2025): CFG whose unconditional prediction is first scaled by s*, the factor that "
        "best matches it to the conditional one (per image, on the noise/velocity predictions), so the guidance "
        "pushes only along what the two really disagree on; optionally the first part of the walk makes no move "
        "(zero-init). Made for flow models (SD3, Flux, Wan), whose early velocity estimates are poor. Use it "
        "instead of CFG; it needs a class or prompts, like CFG."),
        _scale("Guidance scale w: v = (1 - w) s* v_u + w v_c. 1 = the conditional prediction unchanged (no "
               "guidance); higher = stronger pull towards the class or prompt."),
        {
            "zero_init": ("FLOAT", {"min": 0.0, "max": 1.0, "step": 0.01, "tooltip": (
                "Zero-init: over this first fraction of the walk (log sigma, like start/end percent) the estimate "
                "is x itself, so the walk makes no move. 0 = off (the default: on variance-exploding targets it "
                "leaves noise in the picture); about 0.04 zeroes the first step of a flow model's walk, as in the "
                "paper.")}),
        }),
    Step("tcfg", "GuidanceStepTCFG", "Guidance Step: TCFG (tangential damping)", (
        "Tangential damping CFG (Kwon et al. 2025): before CFG, the unconditional prediction is reduced to its "
        "component along the direction it shares with the conditional one (the first singular vector of the two "
        "noise predictions); its off-direction ('tangential') part, which pulls samples off the prompt's "
        "manifold, is dropped. Improves image quality (FID) at the same scale on SD1.5/SDXL/SD3 with no extra "
        "model call. Use it instead of CFG; it needs a class or prompts."),
        _scale("Guidance scale w: D = D_u' + w (D_c - D_u'), D_u' the damped unconditional. 1 = no guidance.")),
    Step("mahiro", "GuidanceStepMahiro", "Guidance Step: Mahiro (similarity-adaptive)", (
        "Mahiro (ComfyUI's Mahiro node by yoinked-h, 2024; no paper): CFG blended with a plain amplification w D_c "
        "of the conditional prediction, by how much the unconditional agrees with the guided direction (a cosine "
        "of sign-square-rooted estimates): agreement gives CFG, disagreement the amplified conditional. Meant to "
        "follow the positive prompt's direction more than its difference from the negative one. It scales the "
        "estimate about 0, so it raises contrast; use it instead of CFG, with a class or prompts."),
        _scale("Guidance scale w (as CFG's): 1 = the conditional prediction unchanged; higher = stronger.")),
    Step("perp_neg", "GuidanceStepPerpNeg", "Guidance Step: PerpNeg (perpendicular negative)", (
        "Perp-Neg (Armandpour et al. 2023): CFG towards the prompt, D = D_u + w ((D_c - D_u) - s perp), minus only "
        "the part of the negative prompt's direction perpendicular to the positive one, so a negative that "
        "overlaps the prompt (e.g. 'side view' against 'a dog') removes what it should without erasing the subject. "
        "D_u is the target's unconditional branch: for a MODEL target connect an EMPTY prompt as its negative and "
        "the negative prompt through the 'negative' input. One extra evaluation of the negative per step."),
        _scale("Guidance scale w towards the prompt, as CFG's. 1 with neg_scale 0 = no guidance."),
        {
            "neg_scale": ("FLOAT", {"min": 0.0, "max": 10.0, "step": 0.05, "tooltip": (
                "Weight s of the perpendicular negative, relative to w (ComfyUI's neg_scale): 0 = plain CFG, 1 = "
                "the negative pushes as hard as the prompt pulls.")}),
            "negative": (WALK_TARGET, {"tooltip": (
                "What to avoid, as a target of the same space and shape: the mixture conditioned on another class, "
                "or a Target Distribution (MODEL) with the same model and the negative prompt as its POSITIVE.")}),
        }),
    Step("fdg", "GuidanceStepFDG", "Guidance Step: FDG (frequency-decoupled)", (
        "Frequency-decoupled guidance (Sadat et al. 2025): CFG applied separately to the fine and coarse bands of "
        "a Laplacian pyramid of the estimate, a high scale on the fine detail and a low one on the coarse layout "
        "and colours, which at a high single scale over-saturate and lose variety. Gives the detail of a high CFG "
        "with the colours and diversity of a low one. Pictures and latents; needs a class or prompts."),
        _scale("Guidance scale on the fine bands (the detail); the paper uses about twice low_weight (10 and 5 for "
               "SDXL). Equal to low_weight = plain CFG.", hi=30.0),
        {
            "low_weight": ("FLOAT", {"min": 0.0, "max": 30.0, "step": 0.1, "tooltip": (
                "Guidance scale on the coarsest band (colours, layout, overall contrast). Low keeps the diversity "
                "and natural colours; 1 = no guidance there.")}),
            "levels": ("INT", {"min": 2, "max": 8, "step": 1, "tooltip": (
                "Pyramid levels: 2 splits off one octave of the finest detail (the paper's setting for latents); "
                "more levels move more of the picture to the fine bands (useful for pixel targets).")}),
        }),
    Step("fresca", "GuidanceStepFreSca", "Guidance Step: FreSca (frequency scaling)", (
        "FreSca (Huang et al. 2025): the guidance difference D - D_u scaled in Fourier space, scale_low below the "
        "frequency cutoff and scale_high above it, so the detail that guidance adds can be boosted (or the "
        "low-frequency push damped) without changing the rest. Goes before or after a CFG step (same result: "
        "it is linear). Pictures and latents; needs a class or prompts. No weight of its own."),
        None,
        {
            "scale_low": ("FLOAT", {"min": 0.0, "max": 10.0, "step": 0.01, "tooltip": (
                "Factor on the guidance difference's low frequencies (layout, colours): 1 = unchanged, < 1 damps "
                "the over-saturating push.")}),
            "scale_high": ("FLOAT", {"min": 0.0, "max": 10.0, "step": 0.01, "tooltip": (
                "Factor on the guidance difference's high frequencies (detail, edges): 1.25 = ComfyUI's default, "
                "1 = unchanged.")}),
            "freq_cutoff": ("INT", {"min": 1, "max": 10000, "step": 1, "tooltip": (
                "Frequencies (cycles per picture, along each axis) below this count as low. 20 = ComfyUI's "
                "default for latents of 64-128 cells; half the side or more makes everything low.")}),
        }),
    Step("cfg_pp", "GuidanceStepCFGPP", "Guidance Step: CFG++ (manifold-constrained)", (
        "CFG++ (Chung et al. 2024, 'CFG++: Manifold-constrained Classifier Free Guidance for Diffusion Models'): "
        "the guided estimate D = D_u + lambda (D_c - D_u) as in CFG, but the walk re-noises each step with the "
        "unconditional prediction's noise instead of the guided one, so samples stay near the data manifold: "
        "smoother trajectories and less over-saturation at small scales (0.2-1 instead of CFG's 4-9). Needs a "
        "conditional branch, and a walk that takes it: euler, euler_ancestral, adams or er_sde (others refuse it; "
        "on a MODEL target the pack's walks only, not ComfyUI's samplers, and not on flow models)."),
        {"min": 0.0, "max": 10.0, "step": 0.05, "tooltip": (
            "Guidance scale lambda: D = D_u + lambda (D_c - D_u), re-noised with D_u's noise. 0 = the unconditional "
            "walk; the paper uses 0..1 (0.6 is about CFG 6 at 50 steps). Its strength grows with the step count: "
            "each step is CFG with scale lambda / (1 - sigma_next / sigma).")}),
    Step("cfg_interval", "GuidanceStepCFGInterval", "Guidance Step: CFG in a sigma interval (guidance limiter)", (
        "Guidance interval (Kynkaanniemi et al. 2024, 'Applying Guidance in a Limited Interval Improves Sample and "
        "Distribution Quality in Diffusion Models'): CFG only where sigma_lo <= sigma <= sigma_hi, the conditional "
        "prediction elsewhere. Guidance at high noise drops modes and at low noise does little, so limiting it "
        "keeps diversity at the same strength. The interval is in the model's own sigma (defaults: the paper's "
        "for SDXL); start/end percent narrow it further."),
        _scale("CFG scale w inside the interval: D = D_u + w (D_c - D_u). 1 = no guidance."),
        {
            "sigma_hi": ("FLOAT", {"min": 0.0, "max": 1000.0, "step": 0.01, "tooltip": (
                "Upper sigma of the interval (the paper's SDXL choice 5.42): above it no guidance.")}),
            "sigma_lo": ("FLOAT", {"min": 0.0, "max": 1000.0, "step": 0.01, "tooltip": (
                "Lower sigma of the interval (the paper's SDXL choice 0.28): below it no guidance.")}),
        }),
    Step("smc_cfg", "GuidanceStepSMCCFG", "Guidance Step: SMC-CFG (sliding-mode control)", (
        "SMC-CFG (Wang et al. 2026, 'CFG-Ctrl: Control-Based Classifier-Free Diffusion Guidance'): CFG whose "
        "guidance signal (the conditional minus the unconditional velocity) gets a switching correction -k sign(s) "
        "driving it onto a sliding surface s = (e - e_prev) + lambda e_prev, which damps the overshoot of high "
        "scales. Made for flow models (SD3, Flux) at large scales; needs a conditional branch."),
        _scale("CFG scale w applied to the corrected signal. With k = 0 exactly CFG with this scale."),
        {
            "lam": ("FLOAT", {"min": 0.0, "max": 10.0, "step": 0.01, "tooltip": (
                "Slope lambda of the sliding surface s = (e - e_prev) + lambda e_prev (the paper's 0.05).")}),
            "k": ("FLOAT", {"min": 0.0, "max": 10.0, "step": 0.01, "tooltip": (
                "Switching gain k: each value of the guidance signal moves by -k sign(s) (velocity units; the "
                "paper's 0.3). 0 = plain CFG; large values add chatter (noise) to the estimate.")}),
        }),
    Step("momentum", "GuidanceStepMomentum", "Guidance Step: Momentum guidance", (
        "Momentum guidance (Liao et al. 2026, 'Momentum Guidance: Plug-and-Play Guidance for Flow Models'): the "
        "walk's velocity (x - D) / sigma is pushed away from the moving average of its earlier velocities, "
        "v' = v + alpha (v - average): a sharpening guidance at one evaluation per step that needs no prompt or "
        "class. Not APG's momentum (which averages the CFG difference). Combines with CFG (put it after). For "
        "deterministic walks (euler, heun, adams): a stochastic walk's fresh noise enters the velocity and large "
        "alpha amplifies it."),
        {"min": 0.0, "max": 5.0, "step": 0.05, "tooltip": (
            "Extrapolation alpha: v' = v + alpha (v - average of earlier v). 0 = off.")},
        {
            "beta": ("FLOAT", {"min": 0.0, "max": 0.99, "step": 0.01, "tooltip": (
                "Decay beta of the moving average: average <- beta average + (1 - beta) v. 0 = the previous "
                "evaluation's velocity alone; near 1 = a long memory.")}),
        }),
    Step("cads", "GuidanceStepCADS", "Guidance Step: CADS (condition annealing)", (
        "CADS (Sadat et al. 2024, 'CADS: Unleashing the Diversity of Diffusion Models through Condition-Annealed "
        "Sampling'): the conditional prediction is made with noise on the condition, strong at the start of the "
        "walk and annealed to none by its end, y' = sqrt(gamma) y + s sqrt(1 - gamma) n: more diverse samples at "
        "high guidance scales. Put it first, before CFG. Needs a condition tensor it can reach: a class on the "
        "mixture target (MODEL targets refuse it). Each step where it acts costs one more prediction."),
        None,
        {
            "tau1": ("FLOAT", {"min": 0.0, "max": 1.0, "step": 0.01, "tooltip": (
                "Walk time (1 = start, 0 = end) below which the condition is clean (gamma = 1); the paper's 0.6.")}),
            "tau2": ("FLOAT", {"min": 0.0, "max": 1.0, "step": 0.01, "tooltip": (
                "Walk time above which the condition is pure noise (gamma = 0); between tau1 and tau2 gamma "
                "falls linearly. The paper's 0.9.")}),
            "noise_scale": ("FLOAT", {"min": 0.0, "max": 5.0, "step": 0.01, "tooltip": (
                "Noise scale s on the condition (the paper's 0.025-0.25); 0 = off.")}),
            "psi": ("FLOAT", {"min": 0.0, "max": 1.0, "step": 0.01, "tooltip": (
                "Share of the rescaled noisy condition (its mean and std set back to the clean condition's): "
                "1 = fully rescaled (the paper's default), 0 = not rescaled.")}),
        }),
    Step("dynamic_threshold", "GuidanceStepDynamicThreshold", "Guidance Step: Dynamic Threshold", (
        "Dynamic thresholding (Saharia et al. 2022, Imagen): each image's denoised estimate is clipped to its "
        "own percentile s of absolute pixel values (when s > 1) and divided by s, so strong guidance is pulled "
        "back into [-1, 1] rather than clipped flat. Put it after the guidance it tames; pixel targets. It has "
        "no weight of its own: start/end percent and the schedule set where it acts."),
        None,
        {
            "percentile": ("FLOAT", {"min": 0.5, "max": 1.0, "step": 0.001, "tooltip": (
                "Percentile p of absolute pixel values that sets each image's threshold s (Imagen: 0.995); "
                "1 = the maximum.")}),
        }),
    Step("autoguidance", "GuidanceStepAutoguidance", "Guidance Step: Autoguidance", (
        "Autoguidance (Karras et al. 2024, 'Guiding a Diffusion Model with a Bad Version of Itself'): "
        "D = D_guide + w (D - D_guide), extrapolating away from a weaker guide target of the same shape "
        "(e.g. a mixture with more spread). Needs no class or prompt."),
        _scale("Guidance scale w: D = D_guide + w (D - D_guide). 1 = no guidance; 2-3 is typical."),
        {
            "guide": (WALK_TARGET, {"tooltip": (
                "The weaker target to guide away from (a TargetDistribution node, same space and shape as "
                "the walked target), e.g. the same mixture with larger detail/variation.")}),
        }),
    Step("pag", "GuidanceStepPAG", "Guidance Step: PAG (perturbed attention)", (
        "Perturbed-attention guidance (Ahn et al. 2024): a second prediction of the conditional prompt with the "
        "self-attention of the chosen UNet layers replaced by the identity (each position sees only itself, so the "
        "model loses the structure it builds); the estimate is pushed away from it: D + w (D_c - D_pag). Sharpens "
        "structure and detail and fixes muddled layouts without raising CFG (with CFG, or alone without a "
        "negative prompt). Costs one extra model evaluation per step while active. ComfyUI MODEL targets only."),
        _scale("PAG scale w: D + w (D_c - D_pag). 0 = off; 3 is the usual value (ComfyUI's node); higher = more "
               "structure, eventually over-sharpened.", hi=100.0),
        {"layers": ("STRING", {"multiline": False, "tooltip": LAYERS_PAG})}),
    Step("seg", "GuidanceStepSEG", "Guidance Step: SEG (smoothed energy)", (
        "Smoothed energy guidance (Hong 2024): a second prediction of the conditional prompt with the "
        "self-attention's queries of the chosen UNet layers blurred (a smoother attention energy), and the estimate "
        "pushed away from it: D + w (D_c - D_seg). Improves structure and detail like PAG with fewer side effects; "
        "the blur, not the scale, sets the strength. One extra model evaluation per step while active. ComfyUI "
        "MODEL targets only."),
        _scale("SEG scale w: D + w (D_c - D_seg). 0 = off; 3 is the paper's value.", hi=100.0),
        {"layers": ("STRING", {"multiline": False, "tooltip": LAYERS_PAG}),
         "blur_sigma": ("FLOAT", {"min": 0.0, "max": 10000.0, "step": 0.5, "tooltip": (
             "Blur of the queries, in tokens of the layer's grid. 0 = no blur (no effect); 10 = the paper's "
             "choice; 9999 or more = infinite (every position attends like the average one, strongest).")})}),
    Step("sag", "GuidanceStepSAG", "Guidance Step: SAG (self-attention)", (
        "Self-attention guidance (Hong et al. 2023): where the model's self-attention looks most, the unconditional "
        "estimate is blurred, re-noised and denoised again, and the estimate pushed away from that answer: "
        "D + w (blurred - D_sag). Adds fine detail in the regions the model attends to. Two extra model "
        "evaluations of the negative prompt per step while active. ComfyUI MODEL targets only (UNet models)."),
        _scale("SAG scale w: D + w (blurred - D_sag). 0 = off; 0.5 is ComfyUI's default, about 1 the paper's.",
               hi=5.0),
        {"blur_sigma": ("FLOAT", {"min": 0.1, "max": 10.0, "step": 0.1, "tooltip": (
             "Std of the Gaussian blur (9 x 9 latent cells) applied where the attention is high. 2 = ComfyUI's "
             "default.")}),
         "layers": ("STRING", {"multiline": False, "tooltip": (
             "The one UNet layer whose self-attention map selects the regions: middle:0 (the default, as ComfyUI's "
             "node and the paper), or input:N / output:N.")})}),
    Step("slg", "GuidanceStepSLG", "Guidance Step: SLG (skip layers)", (
        "Skip-layer guidance (SD3.5's): a second prediction of the conditional prompt with the chosen layers "
        "skipped, and the estimate pushed away from it: D + w (D_c - D_slg). On SD3/SD3.5 and other DiTs it fixes "
        "anatomy and structure (hands, limbs) early in the walk; on a UNet it drops the chosen blocks' "
        "self-attention. One extra model evaluation per step while active. ComfyUI MODEL targets only."),
        _scale("SLG scale w: D + w (D_c - D_slg). 0 = off; 3 is SD3.5's recipe.", hi=10.0),
        {"layers": ("STRING", {"multiline": False, "tooltip": (
            "The layers to skip: DiT (SD3, Flux) block numbers, e.g. 7, 8, 9 (SD3.5 medium's recipe; 'single:N' for "
            "Flux's single blocks); for a UNet (SD1.5, SDXL) blocks such as middle:0, output:1. A layer the model "
            "does not have is an error.")})}),
    Step("swg", "GuidanceStepSWG", "Guidance Step: SWG (sliding windows)", (
        "Sliding-window guidance (Kaiser, Adaloglou & Kollmann 2024): the model denoises four overlapping crops "
        "of the picture separately (a model that cannot see the whole picture) and the estimate is pushed away "
        "from their stitched result: D + w (D_c - D_swg). Strengthens global composition and long-range "
        "coherence; needs no prompt or class. Four extra, smaller model evaluations per step while active. "
        "ComfyUI MODEL targets only."),
        _scale("SWG scale w: D + w (D_c - D_swg). 0 = off; about 1-2 in the papers.", hi=10.0),
        {"window": ("FLOAT", {"min": 0.25, "max": 1.0, "step": 0.05, "tooltip": (
            "Each crop's side as a fraction of the latent's (crops at the four corners). Smaller = a more "
            "short-sighted guide, stronger effect on composition; 1 = the whole picture (no effect).")})}),
    Step("cfg_norm", "GuidanceStepCFGNorm", "Guidance Step: CFGNorm (length cap)", (
        "CFGNorm (ComfyUI's core CFGNorm node): at every position the estimate's vector of channels is shortened to "
        "at most the length of the conditional prediction's, then multiplied by the strength: D = s min(1, |D_c| / "
        "|D|) D. Removes the over-saturation and burnt colours of a high CFG scale while keeping its direction. "
        "Put it after CFG; on the conditional prediction alone it does nothing at strength 1."),
        {"min": 0.0, "max": 100.0, "step": 0.01, "tooltip": (
            "Strength s: D = s min(1, |D_c| / |D|) D. 1 = only cap the length (ComfyUI's default); below 1 also "
            "shrinks every estimate (darker, flatter).")}),
    Step("tpg", "GuidanceStepTPG", "Guidance Step: TPG (token perturbation)", (
        "Token perturbation guidance (Rajabi et al. 2025): a second prediction of the conditional prompt with the "
        "tokens of the hidden states entering the chosen UNet layers' transformer blocks shuffled (a new random "
        "order each step), and the estimate pushed away from it: D + w (D_c - D_tpg). Acts like CFG without a "
        "prompt -- better structure and quality, also for unconditional generation -- and adds to CFG. One extra "
        "model evaluation per step while active. ComfyUI MODEL targets only (UNet models)."),
        _scale("TPG scale w: D + w (D_c - D_tpg). 0 = off; 3 is the paper's value.", hi=30.0),
        {"layers": ("STRING", {"multiline": False, "tooltip": (
            "The UNet layers whose transformer blocks see shuffled tokens: input:7, input:8 (the default: the "
            "deeper down blocks the paper shuffles in SDXL), or any of input:N, middle:0, output:N. A layer "
            "without a transformer block is an error.")})}),
    Step("nag", "GuidanceStepNAG", "Guidance Step: NAG (normalized attention)", (
        "Normalized attention guidance (Chen et al. 2025): the conditional prediction is replaced by the model's "
        "output when every cross-attention is pushed away from the negative prompt's attention -- extrapolated, "
        "its L1 norm capped at tau times the positive's, blended back by alpha. Makes negative prompts work where "
        "CFG cannot (few-step and distilled models) and adds to CFG elsewhere. Uses the MODEL target's negative "
        "prompt. Put it before CFG. One extra model evaluation per step while active. ComfyUI MODEL targets only "
        "(UNet models)."),
        _scale("NAG scale w: Z+ + w (Z+ - Z-) in attention space. 0 = off; 4 = the authors' Flux default "
               "(their nag_scale 5).", hi=30.0),
        {"tau": ("FLOAT", {"min": 1.0, "max": 100.0, "step": 0.1, "tooltip": (
            "Largest allowed ratio of the guided attention's L1 norm to the positive's, per token. Lower = "
            "gentler, safer; 2.5 = the authors' default.")}),
         "alpha": ("FLOAT", {"min": 0.0, "max": 1.0, "step": 0.01, "tooltip": (
             "Blend of the guided attention with the positive one: 0 = no effect, 1 = the guided attention only; "
             "0.25 = the authors' Flux default.")})}),
    Step("pladis", "GuidanceStepPLADIS", "Guidance Step: PLADIS (sparse cross-attention)", (
        "PLADIS (Kim & Sim 2025): the conditional prediction is replaced by the model's output with every "
        "cross-attention map extrapolated from softmax towards a sparse map (1.5-entmax or sparsemax): "
        "A = S + w (A_sparse - S). Sharper text alignment and detail, also on guidance-distilled models. Put it "
        "before CFG (the unconditional prediction stays dense here, unlike the paper). One extra model evaluation "
        "per step while active. ComfyUI MODEL targets only (UNet models)."),
        _scale("PLADIS scale w: S + w (sparse - S). 0 = off; the paper uses 1.5-2.", hi=10.0),
        {"sparse": (["entmax15", "sparsemax"], {"tooltip": (
            "The sparse attention: entmax15 (1.5-entmax, the paper's default) or sparsemax (sparser).")})}),
)

STEP_OUTPUT_TOOLTIP = "The chain with this term appended: connect to WalkSampler's guidance or the next GuidanceStep."
GUIDANCE_INPUT_TOOLTIP = ("The guidance chain so far (another GuidanceStep); none = start a new chain. "
                          "Terms apply in chain order to each step's denoised estimate.")


def _interval_problem(node_id: str, start_percent: Any, end_percent: Any) -> Any:
    """True, or what is wrong with the literal start/end percents (None = linked, known only at run time)."""
    for name, value in (("start_percent", start_percent), ("end_percent", end_percent)):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                or not 0.0 <= value <= 1.0:
            return f"{node_id}: {name}={value!r} is not allowed; expected a number in 0..1"
    if start_percent is not None and end_percent is not None and start_percent > end_percent:
        return (f"{node_id}: start_percent={start_percent} is after end_percent={end_percent}; expected "
                "start_percent <= end_percent (the term acts from start_percent to end_percent of the walk)")
    return True


class GuidanceStepBase:
    """What every GuidanceStep node shares; :func:`step_node` fills in one term's inputs."""

    CATEGORY = f"{CATEGORY}/guidance"
    RETURN_TYPES = (WALK_GUIDANCE,)
    RETURN_NAMES = ("guidance",)
    OUTPUT_TOOLTIPS = (STEP_OUTPUT_TOOLTIP,)
    FUNCTION = "add"
    NODE_ID = "GuidanceStep"
    TERM: type = None  # the GuidanceTerm class
    TERM_INPUTS: Dict[str, Declaration] = {}

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": dict(cls.TERM_INPUTS),
                "optional": {"guidance": (WALK_GUIDANCE, {"tooltip": GUIDANCE_INPUT_TOOLTIP})}}

    @classmethod
    def VALIDATE_INPUTS(cls, start_percent=None, end_percent=None):
        # ComfyUI (and the headless runner) call this with the literal values when the graph is queued, and
        # then skip their own range check of these two inputs: it is done here.
        return _interval_problem(cls.NODE_ID, start_percent, end_percent)

    def add(self, guidance=None, **inputs):
        chain = GuidanceChain() if guidance is None else guidance
        return (chain.plus(self.TERM(**inputs)),)


def _with_default(term: type, name: str, declaration: Declaration) -> Declaration:
    """A widget declaration with the term's dataclass default (sockets stay as they are)."""
    kind, options = declaration
    defaults = {f.name: f.default for f in dataclasses.fields(term) if f.default is not dataclasses.MISSING}
    is_widget = isinstance(kind, (list, tuple)) or kind in ("INT", "FLOAT", "STRING", "BOOLEAN")
    if is_widget and "default" not in options and name in defaults:
        options = {"default": defaults[name], **options}
    return kind, options


def step_node(step: Step) -> type:
    """The node class of ``step`` (its term must be registered in TERMS)."""
    term = TERMS[step.kind]
    declared = {
        **({} if step.weight is None else {"weight": ("FLOAT", step.weight)}),
        **pick("start_percent", "end_percent"),
        **pick_as("schedule", "strength_schedule"),
        **step.fields,
    }
    term_inputs = {name: _with_default(term, name, d) for name, d in declared.items()}

    def add(self, guidance=None, **inputs):
        return GuidanceStepBase.add(self, guidance, **inputs)

    # ComfyUI calls FUNCTION with keyword arguments; the signature shows the term's inputs by name.
    P = inspect.Parameter
    add.__signature__ = inspect.Signature(
        [P("self", P.POSITIONAL_OR_KEYWORD)] + [P(name, P.KEYWORD_ONLY) for name in term_inputs]
        + [P("guidance", P.KEYWORD_ONLY, default=None)])
    return type(step.node_id, (GuidanceStepBase,), {
        "__module__": __name__, "__qualname__": step.node_id, "__doc__": step.description,
        "DESCRIPTION": step.description, "NODE_ID": step.node_id, "TERM": term, "TERM_INPUTS": term_inputs,
        "add": add,
    })


# node id -> (class, display name), for the kinds registered now
GUIDANCE_NODES = {step.node_id: (step_node(step), step.display_name) for step in STEPS if step.kind in TERMS}
