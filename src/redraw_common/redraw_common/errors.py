"""Exceptions of redraw_common. Each message says what was expected and what was found."""


class RedrawInputError(ValueError):
    """Base class: an input (frame, action, file, manifest) is not what the code expects."""


class PreprocessError(RedrawInputError):
    """A camera frame cannot be turned into a model observation."""


class KinematicsError(RedrawInputError):
    """An action or wheel command is not finite or out of its range."""


class ImageConversionError(RedrawInputError):
    """A ROS image message cannot be converted to or from a numpy array."""


class ManifestError(RedrawInputError):
    """A model manifest is missing, malformed, or does not match its model file."""


class EpisodeError(RedrawInputError):
    """An episode file or dict does not follow the episode format."""


class BagError(RedrawInputError):
    """A bag, recording folder or MCAP file is missing, unreadable, or lacks what is needed."""
