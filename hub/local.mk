# hub/: sctpm-hub, the local IoT Hub endpoint. Not built yet (issue: sctpm-hub).
