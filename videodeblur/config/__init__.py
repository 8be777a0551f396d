"""Typed, validated configuration: defaults < TOML file < ``--set`` overrides.

A configuration has five sections::

    [psf]            the blur to undo (point spread function)
    [deconvolution]  how to undo it
    [output]         how to encode the restored video
    [pipeline]       parallelism and input safety limits
    [trim]           which part of the video to process

Every value is checked before any frame is touched, and *every* problem is reported at
once in one :class:`~videodeblur.errors.ConfigError`, one line per problem, each line
starting with the dotted key it concerns, for example::

    psf.radiuss: unknown key (did you mean 'psf.radius'?)
    deconvolution.nsr: must be "auto" or a positive number, got -1
    psf.length: required when psf.kind = "motion"

Nothing but :class:`~videodeblur.errors.ConfigError` leaves :func:`load_config`: a missing,
unreadable or too large file, a TOML syntax error and a wrong value all become one.

The kinds, methods and codecs, and the PSF parameters with their units and bounds, come from
:mod:`videodeblur.registry`. Units are part of the key documentation: lengths of the PSF are in
pixels of the input frame, angles in degrees counter-clockwise from the +x axis (pointing
right), times in seconds and frame numbers counted from 0.
"""

from videodeblur.config.loading import MAX_CONFIG_BYTES, config_to_toml, load_config, parse_override
from videodeblur.config.models import Config, DeconvolutionSection, OutputSection, PipelineSection, TrimSection
from videodeblur.config.psf_section import Keyframe, PsfSection
from videodeblur.limits import DEFAULT_MAX_FRAME_PIXELS
from videodeblur.registry import presets as _presets

#: x264 / x265 speed presets, fastest first.
PRESETS: tuple[str, ...] = _presets()

__all__ = [
    "Config",
    "DEFAULT_MAX_FRAME_PIXELS",
    "DeconvolutionSection",
    "Keyframe",
    "MAX_CONFIG_BYTES",
    "OutputSection",
    "PipelineSection",
    "PRESETS",
    "PsfSection",
    "TrimSection",
    "config_to_toml",
    "load_config",
    "parse_override",
]
