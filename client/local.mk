# client/: sctpm-client, the IoT Hub device client. Not built yet (issue: sctpm-client).
