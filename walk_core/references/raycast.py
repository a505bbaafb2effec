"""A tiny ray caster for the ``photo`` reference: spheres on a checkered ground plane under a sky and a sun.

Vectors are ``[3, N]`` (one column per ray); the scene is a handful of spheres plus the plane y = 0. Shading is Lambert
plus Blinn-Phong under the sun, a sky/ground ambient term with analytic sphere occlusion, soft shadows from
each sphere's closest approach to the shadow ray, Schlick-Fresnel reflections one bounce deep, and fog.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

SKY, GROUND = -1, -2  # hit codes besides sphere indices


@dataclass
class Sphere:
    centre: tuple
    radius: float
    albedo: tuple
    shininess: float
    specular: float
    f0: float  # reflectance at normal incidence
    metal: bool


@dataclass
class World:
    spheres: list
    sun_dir: torch.Tensor  # [3], towards the sun
    sun_colour: torch.Tensor
    sky_zenith: torch.Tensor
    sky_horizon: torch.Tensor
    tile_a: torch.Tensor
    tile_b: torch.Tensor
    tile_size: float

    def tensors(self):
        """Sphere centres, each [3, 1], and radii."""
        c = [torch.tensor(s.centre, dtype=torch.float32).view(3, 1) for s in self.spheres]
        return c, [float(s.radius) for s in self.spheres]


def dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise dot product of [3, N] (or [3, 1]) vectors -> [N]."""
    return (a * b).sum(0)


def normalize(a: torch.Tensor) -> torch.Tensor:
    return a * torch.rsqrt((a * a).sum(0, keepdim=True).clamp_min(1e-18))


def intersect(world: World, origin: torch.Tensor, direction: torch.Tensor):
    """Nearest hit along each ray: distance ``t`` [N] (inf for sky) and what was hit [N] (sphere index,
    GROUND or SKY)."""
    centres, radii = world.tensors()
    n = origin.shape[1]
    best_t = torch.full((n,), math.inf)
    what = torch.full((n,), SKY, dtype=torch.long)
    for i in range(len(world.spheres)):
        oc = origin - centres[i]
        b = dot(oc, direction)
        c = dot(oc, oc) - radii[i] ** 2
        disc = b * b - c
        t = -b - disc.clamp_min(0).sqrt()
        ok = (disc > 0) & (t > 1e-3) & (t < best_t)
        best_t = torch.where(ok, t, best_t)
        what = torch.where(ok, i, what)
    dy = direction[1]
    t_plane = -origin[1] / torch.where(dy.abs() < 1e-6, torch.full_like(dy, -1e-6), dy)
    ok = (dy < 0) & (t_plane > 1e-3) & (t_plane < best_t)
    best_t = torch.where(ok, t_plane, best_t)
    what = torch.where(ok, GROUND, what)
    return best_t, what


def sky(world: World, direction: torch.Tensor) -> torch.Tensor:
    up = direction[1:2].clamp(0, 1)
    colour = world.sky_horizon + (world.sky_zenith - world.sky_horizon) * up.sqrt()
    sun = dot(direction, world.sun_dir).clamp(-1, 1).unsqueeze(0)
    colour = colour + world.sun_colour * (0.25 * torch.exp((sun - 1) * 12) + 6.0 * (sun > 0.9995).float())
    below = direction[1:2] < 0
    return torch.where(below, world.sky_horizon * 0.9, colour)


def soft_shadow(world: World, point: torch.Tensor, softness: float = 10.0) -> torch.Tensor:
    """1 in full sun, 0 in full shadow, from each sphere's closest approach to the ray towards the sun."""
    centres, radii = world.tensors()
    lit = torch.ones(point.shape[1])
    for i in range(len(world.spheres)):
        oc = centres[i] - point
        t = dot(oc, world.sun_dir)
        miss = (dot(oc, oc) - t * t).clamp_min(0).sqrt() - radii[i]
        s = (softness * miss / t.clamp_min(1e-3)).clamp(0, 1)
        s = s * s * (3 - 2 * s)
        lit = lit * torch.where(t > 0, s, torch.ones_like(s))
    return lit


def occlusion(world: World, point: torch.Tensor, normal: torch.Tensor) -> torch.Tensor:
    """Ambient light left after the spheres' analytic occlusion (cosine-weighted solid angle)."""
    centres, radii = world.tensors()
    left = torch.ones(point.shape[1])
    for i in range(len(world.spheres)):
        oc = centres[i] - point
        d = dot(oc, oc).sqrt().clamp_min(1e-4)
        cos = (dot(normal, oc) / d).clamp(0, 1)
        left = left * (1 - cos * (radii[i] / d).clamp(max=1) ** 2)
    return left


def checker(world: World, point: torch.Tensor, t: torch.Tensor, direction: torch.Tensor, pixel: float):
    """Box-filtered checker on the ground (filter = the pixel's footprint), 0 or 1 per tile."""

    def filtered_square(x, w):
        tri = lambda y: 1 - ((y % 2) - 1).abs()  # noqa: E731  (antiderivative of the square wave)
        return (tri(x + w / 2) - tri(x - w / 2)) / w

    wx = (t * pixel / world.tile_size).clamp(1e-4, 4)
    wz = (t * pixel / world.tile_size / direction[1].abs().clamp_min(0.05)).clamp(1e-4, 4)
    sx = filtered_square(point[0] / world.tile_size, wx)
    sz = filtered_square(point[2] / world.tile_size, wz)
    return 0.5 + 0.5 * sx * sz


def shade(world: World, origin, direction, t, what, pixel: float, bounce: bool) -> torch.Tensor:
    """Colour [3, N] of each ray's hit (sky where nothing was hit)."""
    colour = sky(world, direction)
    hit = what != SKY
    if not bool(hit.any()):
        return colour
    centres, _ = world.tensors()
    o, d, tt, w = origin[:, hit], direction[:, hit], t[hit], what[hit]
    p = o + d * tt
    on_ground = w == GROUND
    index = w.clamp_min(0)
    centre_table = torch.cat(centres, dim=1)  # [3, K]
    normal = torch.where(on_ground, torch.tensor([[0.0], [1.0], [0.0]]), normalize(p - centre_table[:, index]))
    table = lambda attr: torch.tensor([getattr(s, attr) for s in world.spheres], dtype=torch.float32)  # noqa: E731
    floor = world.tile_a + (world.tile_b - world.tile_a) * checker(world, p, tt, d, pixel)
    albedo = torch.where(on_ground, floor, table("albedo").T[:, index])
    shininess = torch.where(on_ground, 30.0, table("shininess")[index])
    specular = torch.where(on_ground, 0.15, table("specular")[index])
    f0 = torch.where(on_ground, 0.03, table("f0")[index])
    metal = torch.where(on_ground, False, torch.tensor([s.metal for s in world.spheres])[index])

    lit = soft_shadow(world, p + normal * 1e-3)
    ambient_light = occlusion(world, p, normal)
    n_dot_l = dot(normal, world.sun_dir).clamp_min(0)
    sky_ambient = world.sky_zenith * 0.45 + world.sky_horizon * 0.2
    bounce_light = (world.tile_a + world.tile_b) * 0.5 * world.sun_colour * 0.2
    up = 0.5 + 0.5 * normal[1]
    ambient = (sky_ambient * up + bounce_light * (1 - up)) * ambient_light
    diffuse = albedo * (world.sun_colour * (n_dot_l * lit) + ambient)
    half = normalize(world.sun_dir - d)
    spec = (dot(normal, half).clamp_min(0) ** shininess * specular * lit * (n_dot_l > 0)) * world.sun_colour
    cos_v = dot(normal, -d).clamp(0, 1)
    fresnel = f0 + (1 - f0) * (1 - cos_v) ** 5
    mirror_dir = normalize(d - 2 * dot(d, normal) * normal)
    if bounce:
        ro = p + normal * 1e-3
        rt, rw = intersect(world, ro, mirror_dir)
        reflected = shade(world, ro, mirror_dir, rt, rw, pixel * 2, bounce=False)
    else:
        reflected = sky(world, mirror_dir)
    surface = torch.where(metal, reflected * (albedo + (1 - albedo) * fresnel) + spec,
                          diffuse * (1 - fresnel) + reflected * fresnel + spec)
    # aerial perspective: far ground fades into the horizon haze
    fog = 1 - torch.exp(-(tt - 6).clamp_min(0) * 0.05)
    surface = surface + (world.sky_horizon - surface) * fog
    out = colour.clone()
    out[:, hit] = surface
    return out
