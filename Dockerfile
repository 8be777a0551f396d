# videodeblur in a container: docker build -t videodeblur . && docker run --rm -v "$PWD:/data" videodeblur run /data/in.mp4 -o /data/out.mp4
# PyAV's wheels bundle FFmpeg (with libx264), and pyFFTW's bundle FFTW: no system codecs needed.
FROM python:3.11-slim

WORKDIR /opt/videodeblur
COPY pyproject.toml README.md LICENSE ./
COPY videodeblur ./videodeblur
COPY configs ./configs
COPY samples ./samples
RUN pip install --no-cache-dir . \
    && useradd --create-home videodeblur
USER videodeblur
# FFTW wisdom is cached in the user's cache directory; mount a volume on it to keep it between runs.
ENTRYPOINT ["videodeblur"]
CMD ["--help"]
